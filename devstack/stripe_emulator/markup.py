"""HTML shared by the hosted checkout page and the dashboard: the document, tables, forms, escaping."""

from __future__ import annotations

import html
import urllib.parse
from typing import Any, Sequence

from devstack.stripe_emulator.money import format_money

_PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f8fa; color: #1a1a1a; }
main { max-width: 32rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; }
.emulator-note { background: #fff4ce; border: 2px solid #8a6d00; padding: .75rem; border-radius: 4px; }
.error { background: #fde7e9; border: 2px solid #a4262c; padding: .75rem; border-radius: 4px; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem 0; border-bottom: 1px solid #d0d7de; }
td.amount, th.amount { text-align: right; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1rem 0; }
button { font-size: 1.1rem; padding: .6rem 1.4rem; border-radius: 4px; border: 2px solid #0a2540; }
button.pay { background: #0a2540; color: #fff; }
button.decline, button.pay-later { background: #fff; color: #0a2540; }
main.wide { max-width: 80rem; }
main.wide th, main.wide td { padding-right: .75rem; vertical-align: top; }
main.wide td form { display: inline-block; margin: 0 .4rem .4rem 0; }
main.wide td button { font-size: .9rem; padding: .3rem .7rem; }
main.wide caption { text-align: left; font-size: 1.25rem; font-weight: bold; padding: .5rem 0; }
.notice { background: #dafbe1; border: 2px solid #1a7f37; padding: .75rem; border-radius: 4px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
button:focus-visible, a:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
"""

EMULATOR_NOTE = (
    '<p class="emulator-note" role="note"><strong>Local test emulator.</strong> '
    "This is not real Stripe: no card is charged and no money moves.</p>"
)


def escape(text: Any) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def render_html_document(title: str, body: str, *, wide: bool = False) -> str:
    """Wrap body in a complete, accessible HTML page (``wide`` for the dashboard's tables)."""
    main_tag = '<main class="wide">' if wide else "<main>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n{main_tag}\n{body}\n</main>\n</body>\n</html>\n"
    )


def checkout_path(session_id: str) -> str:
    """The hosted checkout page's path for a session."""
    return f"/c/pay/{urllib.parse.quote(session_id)}"


def control_path(kind: str, object_id: str, action: str) -> str:
    """The /_emulator URL that performs action on one object."""
    return f"/_emulator/{kind}/{urllib.parse.quote(object_id, safe='')}/{action}"


def action_form(action: str, label: str, target_id: str, fields: str = "") -> str:
    """A small POST form that returns to the dashboard.

    The object id is repeated in visually hidden text so that the many
    same-named buttons are told apart by screen readers.
    """
    return (
        f'<form method="post" action="{escape(action)}">'
        '<input type="hidden" name="view" value="dashboard">'
        f"{fields}"
        f'<button type="submit">{escape(label)}<span class="visually-hidden"> {escape(target_id)}</span></button>'
        "</form>"
    )


def render_table(caption: str, headings: Sequence[str], rows: list[list[str]], empty: str) -> str:
    """Render a captioned table; cells are HTML that the caller has already escaped."""
    head = "".join(f'<th scope="col">{escape(heading)}</th>' for heading in headings)
    if rows:
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    else:
        body = f'<tr><td colspan="{len(headings)}">{escape(empty)}</td></tr>\n'
    return (
        f"<table>\n<caption>{escape(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
    )


def money_cell(amount: int, currency: str) -> str:
    """An escaped amount for people, with the exact pence alongside."""
    return f"{escape(format_money(amount, currency))} ({amount}p)"


def code_element(text: Any) -> str:
    """An escaped identifier in a code element."""
    return f"<code>{escape(text)}</code>"
