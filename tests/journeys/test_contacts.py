"""The contact register through its pages (chalice's test client, the real adapters on moto and
moto's SES): register, confirm by the emailed link, replace, withdraw by link and by the withdraw
page; every answer to the forms the same whoever is registered; links refused clearly when used,
expired or unknown; the limits under parallel requests; no address or reference in any log line."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from functools import partial

import pytest

from chalicelib.domain.contacts import ADDRESS_MAIL_LIMITS, CERTIFICATE_MAIL_LIMITS
from chalicelib.services import contacts
from tests.builders import load_register, register_row, sent_mail
from tests.journeys.browser import Browser, location_path
from tests.journeys.test_races import at_once

POSTCODE = "SW1A 2AA"


@pytest.fixture
def holders(deps):
    load_register(deps, *[register_row(f"FA/{3000 + n}", POSTCODE) for n in range(20)])
    return deps


def register_form(email: str, reference: str = "FA/3000", postcode: str = POSTCODE, consent: str = "yes"):
    return {"reference": reference, "postcode": postcode, "email": email, "contact_consent": consent}


def register(client, email: str, reference: str = "FA/3000"):
    return Browser(client).post("/contact/register", register_form(email, reference))


def link(deps, address: str, path: str) -> str:
    """The path and query of the newest link of this kind emailed to the address."""
    pattern = rf"http://[^/\s]+({re.escape(path)}\?token=[A-Za-z0-9_-]+)"
    found = [m for to, _subject, body in sent_mail(deps) if to == address for m in re.findall(pattern, body)]
    return found[-1]


def follow(client, path: str):
    """Open a link's page and press its button, as the holder does."""
    browser = Browser(client)
    page = browser.get(path)
    if page.status_code != 200:
        return page
    token = re.findall(r'name="token" value="([^"]+)"', page.body.decode())[0]
    return browser.post(path.split("?")[0], {"token": token})


def registered(deps) -> list[str]:
    return [email for email, _, _ in contacts.contact_list(deps)]


def answer(response) -> tuple:
    """What a form's answer shows the caller: status, where it leads, its body and header names."""
    return response.status_code, response.headers.get("Location"), response.body, tuple(sorted(response.headers))


def test_a_holder_registers_confirms_and_sees_it_on_screen(client, holders):
    response = register(client, "sam@example.com")
    assert response.status_code == 303 and location_path(response) == "/contact/check-email"
    page = Browser(client).get("/contact/check-email").body.decode()
    assert "If that address can be registered, we have sent it a link" in page
    assert registered(holders) == []
    confirm = link(holders, "sam@example.com", "/contact/confirm")
    opened = Browser(client).get(confirm)
    assert opened.status_code == 200 and b"Confirm my email address" in opened.body
    assert registered(holders) == []  # opening the link (a mail scanner's fetch) changes nothing
    done = follow(client, confirm)
    assert done.status_code == 200 and b"Email address confirmed" in done.body
    assert registered(holders) == ["sam@example.com"]


def test_a_used_an_expired_and_an_unknown_link_are_refused_clearly(client, holders):
    register(client, "sam@example.com")
    confirm = link(holders, "sam@example.com", "/contact/confirm")
    follow(client, confirm)
    used = Browser(client).get(confirm)
    assert used.status_code == 410 and b"This link has already been used" in used.body
    register(client, "jo@example.com", "FA/3001")
    late = link(holders, "jo@example.com", "/contact/confirm")
    holders.clock.set(holders.clock() + timedelta(hours=24, seconds=1))
    expired = follow(client, late)
    assert expired.status_code == 410 and b"This link has expired" in expired.body
    assert b'href="/contact/register"' in expired.body
    for path in (
        "/contact/confirm?token=nonsense-token-of-no-link-at-all",
        "/contact/confirm?token=%3Cb%3E",
        "/contact/confirm",
    ):
        unknown = Browser(client).get(path)
        assert unknown.status_code == 410 and b"This link does not work" in unknown.body
    assert registered(holders) == ["sam@example.com"]


def test_registering_again_replaces_the_address_and_tells_the_old_one(client, holders):
    register(client, "old@example.com")
    follow(client, link(holders, "old@example.com", "/contact/confirm"))
    register(client, "new@example.com")
    follow(client, link(holders, "new@example.com", "/contact/confirm"))
    assert registered(holders) == ["new@example.com"]
    told = [subject for to, subject, _ in sent_mail(holders) if to == "old@example.com"]
    assert told[-1] == "Metropolitan Police: your email address has been replaced"


def test_withdrawing_by_the_link_in_an_email_and_by_the_withdraw_page(client, holders):
    register(client, "sam@example.com")
    follow(client, link(holders, "sam@example.com", "/contact/confirm"))
    done = follow(client, link(holders, "sam@example.com", "/contact/withdraw/confirm"))
    assert done.status_code == 200 and b"Email address withdrawn" in done.body and registered(holders) == []

    register(client, "sam@example.com", "FA/3001")
    follow(client, link(holders, "sam@example.com", "/contact/confirm"))
    asked = Browser(client).post("/contact/withdraw", {"email": "Sam@Example.com"})
    assert asked.status_code == 303 and location_path(asked) == "/contact/withdraw/check-email"
    assert registered(holders) == ["sam@example.com"]  # only the link withdraws
    done = follow(client, link(holders, "Sam@Example.com", "/contact/withdraw/confirm"))
    assert done.status_code == 200 and registered(holders) == []


def test_every_answer_to_the_forms_is_the_same_whoever_is_registered(client, holders):
    register(client, "taken@example.com", "FA/3001")
    follow(client, link(holders, "taken@example.com", "/contact/confirm"))
    for _ in range(ADDRESS_MAIL_LIMITS.per_window):
        register(client, "limited@example.com", "FA/3002")
    answers = {
        answer(register(client, email, reference))
        for email, reference in (
            ("new@example.com", "FA/3003"),
            ("taken@example.com", "FA/3004"),  # registered for another certificate
            ("taken@example.com", "FA/3001"),  # registered for this one
            ("limited@example.com", "FA/3005"),  # at its limit: nothing sent
        )
    }
    assert len(answers) == 1
    withdrawals = {
        answer(Browser(client).post("/contact/withdraw", {"email": email}))
        for email in ("taken@example.com", "nobody@example.com", "limited@example.com")
    }
    assert len(withdrawals) == 1


def test_a_form_with_mistakes_names_each_and_a_wrong_certificate_is_refused_as_ordering_refuses_it(client, holders):
    page = Browser(client).post("/contact/register", register_form("not-an-address", consent=""))
    assert page.status_code == 400
    text = page.body.decode()
    assert "Enter an email address in the correct format" in text and "Select yes if the Firearms" in text
    refused = Browser(client).post("/contact/register", register_form("sam@example.com", postcode="E1 6AN"))
    assert (
        refused.status_code == 400
        and "We could not match that certificate reference and postcode" in refused.body.decode()
    )
    assert sent_mail(holders) == []


def test_parallel_requests_send_no_more_than_the_limits(client, holders):
    """Twelve registrations at once for one certificate, each to its own address, then twelve for
    twelve certificates to one address: the certificate's and the address's limits hold."""
    many_addresses = [
        partial(
            contacts.request_registration, register_form(f"p{n}@example.com", "FA/3000"), holders, f"198.51.100.{n}"
        )
        for n in range(12)
    ]
    at_once(*many_addresses)
    assert len([to for to, _, _ in sent_mail(holders) if to.startswith("p")]) == CERTIFICATE_MAIL_LIMITS.per_window
    one_address = [
        partial(
            contacts.request_registration, register_form("one@example.com", f"FA/{3001 + n}"), holders, f"203.0.113.{n}"
        )
        for n in range(12)
    ]
    at_once(*one_address)
    assert len([to for to, _, _ in sent_mail(holders) if to == "one@example.com"]) == ADDRESS_MAIL_LIMITS.per_window


def test_no_contact_journey_writes_an_address_or_a_reference_to_any_log(client, holders, caplog):
    with caplog.at_level(logging.DEBUG):
        Browser(client).post("/contact/register", register_form("sam@example.com", postcode="E1 6AN"))  # refused
        register(client, "sam@example.com")
        follow(client, link(holders, "sam@example.com", "/contact/confirm"))
        register(client, "jo.new@example.com")
        follow(client, link(holders, "jo.new@example.com", "/contact/confirm"))
        Browser(client).post("/contact/withdraw", {"email": "jo.new@example.com"})
        follow(client, link(holders, "jo.new@example.com", "/contact/withdraw/confirm"))
    lines = [record.getMessage() for record in caplog.records]
    assert any("contact address confirmed" in line for line in lines)
    assert any("contact address withdrawn" in line for line in lines)
    tokens = {m for _, _, body in sent_mail(holders) for m in re.findall(r"token=([A-Za-z0-9_-]+)", body)}
    for line in lines:
        for personal in ("sam@example.com", "jo.new@example.com", "sam", "FA/3000", "FA3000", "SW1A", *tokens):
            assert personal not in line, (personal, line)
