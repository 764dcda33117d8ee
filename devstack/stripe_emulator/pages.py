"""The hosted checkout page: order summary with Pay, Decline and bank transfer buttons."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.checkout import CheckoutRecord, success_redirect_url
from devstack.stripe_emulator.markup import EMULATOR_NOTE, checkout_path, escape, render_html_document
from devstack.stripe_emulator.money import format_money


def _render_line_items(line_items: list[dict[str, Any]], total: str) -> str:
    """Render the order summary table, ending with the total."""
    rows = "".join(
        f"<tr><td>{escape(item['description'])}</td><td>{item['quantity']}</td>"
        f'<td class="amount">{escape(format_money(item["amount_total"], item["currency"]))}</td></tr>\n'
        for item in line_items
    )
    return (
        "<table>\n<caption>Order summary</caption>\n"
        '<thead><tr><th scope="col">Item</th><th scope="col">Qty</th>'
        '<th scope="col" class="amount">Amount</th></tr></thead>\n'
        f"<tbody>\n{rows}</tbody>\n"
        '<tfoot><tr><th scope="row" colspan="2">Total</th>'
        f'<td class="amount"><strong>{escape(total)}</strong></td></tr></tfoot>\n'
        "</table>"
    )


def _render_payment_actions(session: dict[str, Any], error_message: str | None) -> str:
    """Render the decline alert (if any), the Pay / Decline / bank transfer forms and the cancel link."""
    base = checkout_path(session["id"])
    parts = [f'<p class="error" role="alert">{escape(error_message)}</p>'] if error_message else []
    parts.append(
        '<div class="actions">'
        f'<form method="post" action="{base}/pay">'
        '<button type="submit" class="pay">Pay</button></form>'
        f'<form method="post" action="{base}/decline">'
        '<button type="submit" class="decline">Decline</button></form>'
        f'<form method="post" action="{base}/pay_async">'
        '<button type="submit" class="pay-later">Pay by bank transfer (confirms later)</button></form>'
        "</div>"
    )
    if session.get("cancel_url"):
        parts.append(f'<p><a href="{escape(session["cancel_url"])}">Cancel and go back</a></p>')
    return "\n".join(parts)


def _render_closed_session(session: dict[str, Any]) -> str:
    """Explain why a completed or expired session can no longer be paid."""
    if session["status"] == "complete":
        continue_link = f'<a href="{escape(success_redirect_url(session))}">Continue</a>'
        if session["payment_status"] != "paid":
            return (
                '<p role="status">Your bank transfer has been started and will be confirmed later. '
                f"Nothing more to do here. {continue_link}</p>"
            )
        return f'<p role="status">This payment is complete. Nothing more to do here. {continue_link}</p>'
    back_link = ""
    if session.get("cancel_url"):
        back_link = f' <a href="{escape(session["cancel_url"])}">Go back</a>'
    return f'<p role="status">This checkout session has expired, so it can no longer be paid.{back_link}</p>'


def render_checkout_page(record: CheckoutRecord, error_message: str | None = None) -> str:
    """Render the hosted checkout page for one session."""
    session = record.session
    total = format_money(session["amount_total"], session["currency"])
    if session["status"] == "open":
        state = _render_payment_actions(session, error_message)
    else:
        state = _render_closed_session(session)
    heading = f"<h1>Pay {escape(total)}</h1>"
    body = "\n".join([EMULATOR_NOTE, heading, _render_line_items(record.line_items, total), state])
    return render_html_document(f"Checkout: {total} (local Stripe emulator)", body)


def render_not_found_page() -> str:
    """Render the page for an unknown checkout session."""
    body = f"{EMULATOR_NOTE}\n<h1>Checkout session not found</h1>\n<p>Check the link and try again.</p>"
    return render_html_document("Checkout session not found (local Stripe emulator)", body)
