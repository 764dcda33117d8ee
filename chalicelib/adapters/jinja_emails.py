"""The holder's emails as plain text, from templates/email/<kind>.txt: the first line is the subject.

Jinja2 is imported by the first email written, not when the adapter is built: a cold start that
sends no mail never loads it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from ..domain.orders import Order

# templates/ sits beside app.py: in the repository, and in the Lambda package (vendor/templates).
EMAIL_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "email"


class JinjaEmails:
    def __init__(self, base_url: str, templates: Path = EMAIL_TEMPLATES, contact_email: str | None = None):
        self._base_url = base_url
        self._templates = templates
        self._contact_email = contact_email  # the campaign's contact, for "if you did not ask for this"

    @cached_property
    def _environment(self):
        import jinja2  # imported on the first email, not at cold start

        # Plain text: nothing is escaped (select_autoescape escapes only .html, and there is none here).
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self._templates)),
            autoescape=jinja2.select_autoescape(["html"]),
        )

    def render(self, kind: str, order: Order) -> tuple[str, str]:
        text = self._environment.get_template(f"{kind}.txt").render(
            order=order,
            price=order.amount.display(),
            dispatch=order.dispatch,
            base_url=self._base_url,
            contact_email=self._contact_email,
        )
        return _subject_and_body(text)

    def render_contact(self, kind: str, **links: str) -> tuple[str, str]:
        text = self._environment.get_template(f"contact_{kind}.txt").render(
            base_url=self._base_url, contact_email=self._contact_email, **links
        )
        return _subject_and_body(text)


def _subject_and_body(text: str) -> tuple[str, str]:
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip() + "\n"
