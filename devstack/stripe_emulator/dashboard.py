"""The developer dashboard at ``/_emulator``: payments, disputes, balance, payouts and events."""

from __future__ import annotations

import time
from typing import Any

from devstack.stripe_emulator.checkout import is_awaiting_settlement
from devstack.stripe_emulator.constants import (
    CLOSED_DISPUTE_STATUSES,
    DASHBOARD_EVENT_LIMIT,
    DASHBOARD_ROW_LIMIT,
    DISPUTE_REASONS,
)
from devstack.stripe_emulator.markup import (
    EMULATOR_NOTE,
    action_form,
    checkout_path,
    code_element,
    control_path,
    escape,
    money_cell,
    render_html_document,
    render_table,
)
from devstack.stripe_emulator.resources import unrefunded_amount
from devstack.stripe_emulator.views import DashboardView

_DASHBOARD_NOTICES = {
    "settled": "The bank transfer was settled.",
    "expired": "The checkout session was expired.",
    "refunded": "The refund was created.",
    "disputed": "The dispute was opened.",
    "closed": "The dispute was closed.",
    "redelivered": "The event was sent to the webhook URL again.",
    "paid_out": "The payout was created and paid.",
    "made_available": "The pending balance is available now: a payout can be run.",
}


def dashboard_notice(query: dict[str, list[str]]) -> str | None:
    """Turn the ``?done=...`` of a dashboard redirect into a fixed message.

    Only known codes and a numeric status are used, so a crafted link cannot
    put arbitrary words on the page.
    """
    notice = _DASHBOARD_NOTICES.get((query.get("done") or [""])[0])
    webhook_status = (query.get("webhook_status") or [""])[0]
    if notice and webhook_status.isdigit():
        answer = f"answered {webhook_status}" if webhook_status != "0" else "did not respond"
        notice = f"{notice} The webhook endpoint {answer}."
    return notice


def _session_actions(session: dict[str, Any], payment_intent: dict[str, Any] | None) -> str:
    """Forms for what can still happen to a session: expire it, or settle its bank transfer."""
    session_id = session["id"]
    if session["status"] == "open":
        checkout_link = (
            f'<a href="{escape(checkout_path(session_id))}">Open checkout page'
            f'<span class="visually-hidden"> {escape(session_id)}</span></a> '
        )
        return checkout_link + action_form(control_path("sessions", session_id, "expire"), "Expire", session_id)
    if is_awaiting_settlement(session, payment_intent):
        settle = control_path("sessions", session_id, "settle")
        return "".join(
            action_form(settle, label, session_id, f'<input type="hidden" name="outcome" value="{outcome}">')
            for outcome, label in (("succeeded", "Settle: money arrived"), ("failed", "Settle: transfer failed"))
        )
    return "None"


def _render_sessions(view: DashboardView) -> str:
    """The Checkout Sessions table."""
    payment_intents = {intent["id"]: intent for intent in view.payment_intents}
    rows = [
        [
            code_element(session["id"]),
            money_cell(session["amount_total"], session["currency"]),
            escape(session["status"]),
            escape(session["payment_status"]),
            _session_actions(session, payment_intents.get(session["payment_intent"] or "")),
        ]
        for session in view.sessions
    ]
    headings = ("Session", "Amount", "Status", "Payment status", "Actions")
    return render_table("Checkout Sessions", headings, rows, "No checkout sessions yet.")


def _refund_form(payment_intent_id: str, charge: dict[str, Any]) -> str:
    """A refund form whose optional amount defaults to everything still unrefunded."""
    field_id = f"refund-amount-{payment_intent_id}"
    remaining = unrefunded_amount(charge)
    amount_field = (
        f'<label for="{escape(field_id)}">Amount in pence (blank: all {remaining}p)</label> '
        f'<input id="{escape(field_id)}" name="amount" type="number" min="1" max="{remaining}" step="1" '
        'inputmode="numeric"> '
    )
    return action_form(
        control_path("payment_intents", payment_intent_id, "refund"), "Refund", payment_intent_id, amount_field
    )


def _dispute_form(payment_intent_id: str) -> str:
    """A form to open a dispute for the whole charge, with a choice of reason."""
    field_id = f"dispute-reason-{payment_intent_id}"
    options = "".join(
        f'<option value="{reason}"{" selected" if reason == "fraudulent" else ""}>{reason}</option>'
        for reason in DISPUTE_REASONS
    )
    reason_field = (
        f'<label for="{escape(field_id)}">Reason</label> '
        f'<select id="{escape(field_id)}" name="reason">{options}</select> '
    )
    action = control_path("payment_intents", payment_intent_id, "dispute")
    return action_form(action, "Open dispute", payment_intent_id, reason_field)


def _render_payment_intents(view: DashboardView) -> str:
    """The PaymentIntents table, with each one's charge, refunds and dispute state."""
    rows = []
    for intent in view.payment_intents:
        charge = view.charges.get(intent["latest_charge"] or "")
        actions = []
        if charge is not None and unrefunded_amount(charge) > 0:
            actions.append(_refund_form(intent["id"], charge))
        if charge is not None and not charge["disputed"]:
            actions.append(_dispute_form(intent["id"]))
        rows.append(
            [
                code_element(intent["id"]),
                money_cell(intent["amount"], intent["currency"]),
                escape(intent["status"]),
                code_element(charge["id"]) if charge else "None",
                money_cell(charge["amount_refunded"], charge["currency"]) if charge else "None",
                "Yes" if charge and charge["disputed"] else "No",
                "".join(actions) or "None",
            ]
        )
    headings = ("PaymentIntent", "Amount", "Status", "Charge", "Refunded", "Disputed", "Actions")
    return render_table("Payment intents", headings, rows, "No payments yet.")


def _render_disputes(view: DashboardView) -> str:
    """The Disputes table, with forms to close open ones."""
    rows = []
    for dispute in view.disputes:
        actions = "None"
        if dispute["status"] not in CLOSED_DISPUTE_STATUSES:
            close = control_path("disputes", dispute["id"], "close")
            actions = "".join(
                action_form(close, label, dispute["id"], f'<input type="hidden" name="outcome" value="{outcome}">')
                for outcome, label in (("won", "Close as won"), ("lost", "Close as lost"))
            )
        rows.append(
            [
                code_element(dispute["id"]),
                code_element(dispute["payment_intent"]),
                money_cell(dispute["amount"], dispute["currency"]),
                escape(dispute["reason"]),
                escape(dispute["status"]),
                actions,
            ]
        )
    headings = ("Dispute", "PaymentIntent", "Amount", "Reason", "Status", "Actions")
    return render_table("Disputes", headings, rows, "No disputes yet.")


def _render_balances(view: DashboardView) -> str:
    """What is waiting to be paid out, per currency, and the "Run a payout now" button."""
    lines = "".join(
        f"<li>{money_cell(available, currency)} available, {money_cell(pending, currency)} pending</li>"
        for currency, (available, pending) in sorted(view.balances.items())
    )
    balance = f"<ul>{lines}</ul>" if lines else "<p>Nothing is waiting to be paid out.</p>"
    delay = (
        "<p>As in Stripe, a charge's funds are pending for two days before they can be paid out. "
        "To pay out today's charges now, make the balance available first.</p>"
    )
    buttons = "".join(
        f'<form method="post" action="{action}"><input type="hidden" name="view" value="dashboard">'
        f'<button type="submit">{label}</button></form>'
        for action, label in (
            ("/_emulator/balance/available", "Make today's balance available"),
            ("/_emulator/payouts", "Run a payout now"),
        )
    )
    return f"<h2>Balance not yet paid out</h2>\n{balance}\n{delay}\n{buttons}"


def _render_payouts(view: DashboardView) -> str:
    """The newest payouts and how many balance transactions each paid out."""
    rows = [
        [
            code_element(payout["id"]),
            money_cell(payout["amount"], payout["currency"]),
            escape(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(payout["arrival_date"]))),
            escape(payout["status"]),
            str(view.payout_sizes.get(payout["id"], 0)),
        ]
        for payout in view.payouts
    ]
    headings = ("Payout", "Amount", "Arrival date", "Status", "Transactions")
    return render_table(f"Payouts (newest {DASHBOARD_ROW_LIMIT})", headings, rows, "No payouts yet.")


def _render_events(view: DashboardView, can_redeliver: bool) -> str:
    """The newest events, each with a Redeliver form when a webhook URL is set."""
    rows = [
        [
            code_element(event["id"]),
            code_element(event["type"]),
            escape(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event["created"]))),
            action_form(control_path("events", event["id"], "redeliver"), "Redeliver", event["id"])
            if can_redeliver
            else "None (no webhook URL)",
        ]
        for event in view.events
    ]
    caption = f"Events (newest {DASHBOARD_EVENT_LIMIT})"
    return render_table(caption, ("Event", "Type", "Created", "Actions"), rows, "No events yet.")


def render_dashboard(
    view: DashboardView,
    *,
    webhook_url: str | None,
    notice: str | None = None,
    error_message: str | None = None,
) -> str:
    """Render the developer dashboard: payments, disputes, balance, payouts and events, with their controls."""
    parts = ["<h1>Local Stripe emulator</h1>", EMULATOR_NOTE]
    if notice:
        parts.append(f'<p class="notice" role="status">{escape(notice)}</p>')
    if error_message:
        parts.append(f'<p class="error" role="alert">{escape(error_message)}</p>')
    target = code_element(webhook_url) if webhook_url else "nowhere (no webhook URL is set)"
    parts.append(f'<p>Webhooks go to {target}. <a href="/_emulator">Refresh</a></p>')
    parts.extend(
        [
            _render_sessions(view),
            _render_payment_intents(view),
            _render_disputes(view),
            _render_balances(view),
            _render_payouts(view),
            _render_events(view, bool(webhook_url)),
        ]
    )
    return render_html_document("Dashboard (local Stripe emulator)", "\n".join(parts), wide=True)
