"""The holder's pages of the contact register: register an address (the certificate proved, then a
link emailed), confirm it from the link, and withdraw an address by its link or from the withdraw
page. Routes only translate (chalicelib.services.contacts decides); refusals are answered by `page`.

A link's page (GET) only says whether the link can be used and offers a button; the change is the
button's POST, so a mail scanner that fetches every link in an email changes nothing.
"""

from __future__ import annotations

import re

from chalice import Blueprint

from ..domain.contacts import CONFIRM, WITHDRAW
from ..services import contacts
from .errors import NOT_MATCHED, Form
from .holder import FORM, campaign_contact, client_address, deps, form, form_page, page
from .pages import redirect, render

contact_pages = Blueprint(__name__)

REGISTRATION_FIELDS = contacts.REGISTRATION_FIELDS
WITHDRAW_FIELDS = ("email",)
REGISTRATION_FORM = Form(
    "contact/register.html", REGISTRATION_FIELDS, lambda: {"not_matched": NOT_MATCHED, **campaign_contact()}
)
WITHDRAW_FORM = Form("contact/withdraw.html", WITHDRAW_FIELDS)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")  # secrets.token_urlsafe's alphabet; anything else is no link
LINK_PAGES = {CONFIRM: "/contact/confirm", WITHDRAW: "/contact/withdraw/confirm"}


def _hours() -> int:
    return deps().settings.contact_link_hours


def _token(raw: str | None) -> str:
    """The link's token as given, or a value no link has (so it is refused as unknown)."""
    return raw if raw and _TOKEN.fullmatch(raw) else "-"


@contact_pages.route("/contact/register", methods=["GET"])
@page
def registration_form():
    return form_page("contact/register.html", form={}, errors={})


@contact_pages.route("/contact/register", methods=["POST"], content_types=FORM)
@page(form=REGISTRATION_FORM)
def registration_answer():
    contacts.request_registration(form(REGISTRATION_FIELDS), deps(), client_address())
    return redirect("/contact/check-email")


@contact_pages.route("/contact/check-email", methods=["GET"])
@page
def registration_sent():
    return render("contact/check_email.html", hours=_hours(), withdrawal=False)


@contact_pages.route("/contact/confirm", methods=["GET"])
@page
def confirmation_link():
    return _link_page(CONFIRM)


@contact_pages.route("/contact/confirm", methods=["POST"], content_types=FORM)
@page
def confirmation_answer():
    contacts.confirm_registration(_token(form(("token",))["token"]), deps())
    return render("contact/done.html", title="Email address confirmed", withdrawn=False)


@contact_pages.route("/contact/withdraw", methods=["GET"])
@page
def withdrawal_form():
    return form_page("contact/withdraw.html", form={}, errors={})


@contact_pages.route("/contact/withdraw", methods=["POST"], content_types=FORM)
@page(form=WITHDRAW_FORM)
def withdrawal_answer():
    contacts.request_withdrawal(form(WITHDRAW_FIELDS)["email"], deps(), client_address())
    return redirect("/contact/withdraw/check-email")


@contact_pages.route("/contact/withdraw/check-email", methods=["GET"])
@page
def withdrawal_sent():
    return render("contact/check_email.html", hours=_hours(), withdrawal=True)


@contact_pages.route("/contact/withdraw/confirm", methods=["GET"])
@page
def withdrawal_link():
    return _link_page(WITHDRAW)


@contact_pages.route("/contact/withdraw/confirm", methods=["POST"], content_types=FORM)
@page
def withdrawal_confirmed():
    contacts.withdraw(_token(form(("token",))["token"]), deps())
    return render("contact/done.html", title="Email address withdrawn", withdrawn=True)


def _link_page(purpose: str):
    query = contact_pages.current_request.query_params
    token = _token(query.get("token") if query else None)
    contacts.check_link(token, purpose, deps())
    return form_page("contact/link.html", token=token, purpose=purpose, action=LINK_PAGES[purpose])
