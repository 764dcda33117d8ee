"""The contact register's use cases on fakes: register (the certificate proved, a link emailed),
confirm once, replace, withdraw by link and by the withdraw page, the limits, the order journey's
tick box, the team's list and the removal of certificates that left the register."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from chalicelib import services
from chalicelib.domain.contacts import CERTIFICATE_MAIL_LIMITS, ADDRESS_MAIL_LIMITS
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.errors import CertificateNotAccepted, ContactLinkNotUsable, InvalidInput, MailUnavailable
from chalicelib.domain.references import new_order_reference
from chalicelib.domain.register import parse_register_row
from chalicelib.services import contacts
from tests.builders import NOW, delivery_form, fake_dependencies, load_register, register_row, sent_mail

# Anything that would tell a reader of the email the recipient holds a certificate, or which one.
CERTIFICATE_WORDS = ("certificate", "firearm", "shotgun", "gun", "FA/", "SW1A")


@pytest.fixture
def deps():
    deps = fake_dependencies()
    load_register(
        deps,
        register_row("FA/1001", "SW1A 2AA"),
        register_row("FA/1002", "SW1A 2AA"),
        register_row("FA/1003", "SW1A 2AA", status="revoked"),
    )
    return deps


def register(deps, email="sam@example.com", reference="FA/1001", client="198.51.100.7", **changes):
    form = {"reference": reference, "postcode": "SW1A 2AA", "email": email, "contact_consent": "yes", **changes}
    contacts.request_registration(form, deps, client)


def mail_to(deps, address: str) -> list[tuple[str, str]]:
    return [(subject, body) for to, subject, body in sent_mail(deps) if to == address]


def link_in(body: str, path: str) -> str:
    [token] = re.findall(rf"{re.escape(path)}\?token=([A-Za-z0-9_-]+)", body)
    return token


def newest_token(deps, address: str, path: str) -> str:
    """The token of the newest link to `path` emailed to the address (an order's own emails may
    have come since)."""
    return link_in(next(body for _, body in reversed(mail_to(deps, address)) if f"{path}?" in body), path)


def confirm_token(deps, address: str) -> str:
    return newest_token(deps, address, "/contact/confirm")


def withdraw_token(deps, address: str) -> str:
    return newest_token(deps, address, "/contact/withdraw/confirm")


def registered(deps) -> list[str]:
    return [email for email, _at, _confirmed in contacts.contact_list(deps)]


def test_registering_emails_a_neutral_confirmation_and_registers_nothing_until_it_is_followed(deps):
    register(deps)
    [(subject, body)] = mail_to(deps, "sam@example.com")
    assert subject == "Metropolitan Police: confirm your email address"
    for word in CERTIFICATE_WORDS:
        assert word.lower() not in f"{subject}\n{body}".lower(), word
    assert "24 hours" in body and "/contact/withdraw/confirm?token=" in body
    assert registered(deps) == []
    contacts.confirm_registration(confirm_token(deps, "sam@example.com"), deps)
    [(email, consented, confirmed)] = contacts.contact_list(deps)
    assert (email, consented, confirmed) == ("sam@example.com", NOW, NOW)


def test_a_confirmation_link_works_once(deps):
    register(deps)
    token = confirm_token(deps, "sam@example.com")
    contacts.confirm_registration(token, deps)
    with pytest.raises(ContactLinkNotUsable) as refused:
        contacts.confirm_registration(token, deps)
    assert refused.value.state == "used"
    with pytest.raises(ContactLinkNotUsable) as looked:
        contacts.check_link(token, "confirm", deps)
    assert looked.value.state == "used"


def test_a_confirmation_link_expires_after_its_hours(deps):
    register(deps)
    token = confirm_token(deps, "sam@example.com")
    deps.clock.set(NOW + timedelta(hours=24))
    with pytest.raises(ContactLinkNotUsable) as refused:
        contacts.confirm_registration(token, deps)
    assert refused.value.state == "expired" and registered(deps) == []


def test_an_unknown_token_or_a_withdrawal_token_does_not_confirm(deps):
    register(deps)
    for token in ("-", "A" * 43, withdraw_token(deps, "sam@example.com")):
        with pytest.raises(ContactLinkNotUsable) as refused:
            contacts.confirm_registration(token, deps)
        assert refused.value.state == "unknown"
    assert registered(deps) == []


def test_every_field_that_cannot_be_read_is_named_and_nothing_is_counted(deps):
    with pytest.raises(InvalidInput) as refused:
        contacts.request_registration({"reference": "", "postcode": "nope", "email": "sam@"}, deps, "198.51.100.7")
    assert set(refused.value.errors) == {"reference", "postcode", "email", "contact_consent"}
    assert deps.attempts.counters == {} and deps.mailer.sent == []


def test_a_wrong_postcode_a_revoked_certificate_and_an_unknown_one_are_refused_alike(deps):
    for reference, postcode in (("FA/1001", "E1 6AN"), ("FA/1003", "SW1A 2AA"), ("FA/9999", "SW1A 2AA")):
        form = {"reference": reference, "postcode": postcode, "email": "sam@example.com", "contact_consent": "yes"}
        with pytest.raises(CertificateNotAccepted):
            contacts.request_registration(form, deps, "198.51.100.7")
    assert deps.mailer.sent == []


def test_a_holder_who_ordered_a_kit_can_still_register(deps):
    checked = services.check_certificate("FA/1001", "SW1A 2AA", deps)
    services.confirm_order(checked, parse_delivery_details(delivery_form(email="")), new_order_reference(), deps)
    register(deps)
    assert len(mail_to(deps, "sam@example.com")) == 1


def test_a_new_address_replaces_the_old_which_is_told_with_its_own_withdrawal_link(deps):
    register(deps, "old@example.com")
    contacts.confirm_registration(confirm_token(deps, "old@example.com"), deps)
    register(deps, "new@example.com")
    assert registered(deps) == ["old@example.com"]  # not replaced until the new one is confirmed
    contacts.confirm_registration(confirm_token(deps, "new@example.com"), deps)
    assert registered(deps) == ["new@example.com"]
    subject, body = mail_to(deps, "old@example.com")[-1]
    assert subject == "Metropolitan Police: your email address has been replaced"
    assert "new@example.com" not in body and "/contact/withdraw/confirm?token=" in body
    assert contacts.send_contact_notices(deps) == 0  # told once: nothing left to send


def test_a_notice_that_could_not_go_is_sent_by_the_schedule_once(deps):
    register(deps, "old@example.com")
    contacts.confirm_registration(confirm_token(deps, "old@example.com"), deps)
    register(deps, "new@example.com")
    deps.mailer.fail = 1
    contacts.confirm_registration(confirm_token(deps, "new@example.com"), deps)  # the notice fails
    assert registered(deps) == ["new@example.com"] and len(mail_to(deps, "old@example.com")) == 1
    assert contacts.send_contact_notices(deps) == 1
    assert contacts.send_contact_notices(deps) == 0  # delivered twice by the schedule: sent once
    assert mail_to(deps, "old@example.com")[-1][0].endswith("has been replaced")


def test_the_same_address_confirmed_again_is_not_told_it_was_replaced(deps):
    for _ in range(2):
        register(deps)
        contacts.confirm_registration(confirm_token(deps, "sam@example.com"), deps)
    assert registered(deps) == ["sam@example.com"]
    assert [s for s, _ in mail_to(deps, "sam@example.com") if "replaced" in s] == []


def test_the_withdrawal_link_in_an_email_withdraws_the_address_at_once(deps):
    register(deps, "Sam@Example.com", reference="FA/1001")
    contacts.confirm_registration(confirm_token(deps, "Sam@Example.com"), deps)
    register(deps, "sam@example.com", reference="FA/1002")  # the same mailbox, another certificate
    contacts.confirm_registration(confirm_token(deps, "sam@example.com"), deps)
    assert contacts.withdraw(withdraw_token(deps, "Sam@Example.com"), deps) == 2
    assert registered(deps) == []


def test_the_withdraw_page_emails_a_link_only_to_a_registered_address(deps):
    register(deps)
    contacts.confirm_registration(confirm_token(deps, "sam@example.com"), deps)
    contacts.request_withdrawal("nobody@example.com", deps, "198.51.100.7")
    assert mail_to(deps, "nobody@example.com") == []
    contacts.request_withdrawal(" SAM@example.com ", deps, "198.51.100.7")
    subject, body = mail_to(deps, "SAM@example.com")[-1]
    assert subject == "Metropolitan Police: stop using your email address" and "24 hours" in body
    contacts.withdraw(link_in(body, "/contact/withdraw/confirm"), deps)
    assert registered(deps) == []


def test_emails_stop_at_the_address_limit_and_the_certificate_limit(deps):
    for _ in range(ADDRESS_MAIL_LIMITS.per_window + 2):
        register(deps, "sam@example.com", reference="FA/1001")
    assert len(mail_to(deps, "sam@example.com")) == ADDRESS_MAIL_LIMITS.per_window
    for number in range(CERTIFICATE_MAIL_LIMITS.per_window + 2):
        register(deps, f"other{number}@example.com", reference="FA/1002")
    assert len([m for m in deps.mailer.sent if m[0].startswith("other")]) == CERTIFICATE_MAIL_LIMITS.per_window
    assert sum(r.get("ContactEmailsLimited", 0) for r in deps.metrics.reports) == 4


def test_the_order_journeys_tick_box_sends_the_same_confirmation_and_the_order_keeps_no_consent(deps):
    checked = services.check_certificate("FA/1001", "SW1A 2AA", deps)
    delivery = parse_delivery_details(delivery_form(email="sam@example.com", contact_consent="yes"))
    placed = services.confirm_order(checked, delivery, new_order_reference(), deps)
    assert deps.orders.get(placed.reference).delivery.contact_consent is False
    assert registered(deps) == []
    contacts.confirm_registration(confirm_token(deps, "sam@example.com"), deps)
    assert registered(deps) == ["sam@example.com"]


def drop_from_register(deps, reference: str) -> None:
    """A new generation without the certificate, switched to as an import of an export without it."""
    row = parse_register_row(register_row(reference), deps.settings.reference_rules)
    register, key = deps.register, row.to_entry(deps.keys).reference_key
    state = register.state()
    kept = [e for e in register.entries(state.live) if e.reference_key != key]
    generation = register.start_generation()
    register.switch(generation, state, register.save_all(generation, kept), deps.clock())


def test_an_import_that_drops_or_revokes_a_certificate_removes_its_contact(deps):
    load_register(deps, register_row("FA/1004", "SW1A 2AA"))
    for reference, email in (("FA/1001", "sam@example.com"), ("FA/1002", "jo@example.com"), ("FA/1004", "al@x.org")):
        register(deps, email, reference=reference)
        contacts.confirm_registration(confirm_token(deps, email), deps)
    load_register(deps, register_row("FA/1002", "SW1A 2AA", status="revoked"))
    drop_from_register(deps, "FA/1004")
    assert contacts.remove_departed_contacts(deps.register, deps.contacts) == 2
    assert registered(deps) == ["sam@example.com"]
    assert contacts.remove_departed_contacts(deps.register, deps.contacts) == 0  # run again: nothing more


def test_a_confirmation_ses_refused_asks_the_holder_to_try_again_but_never_fails_an_order(deps):
    deps.mailer.fail = 1
    with pytest.raises(MailUnavailable):
        register(deps)
    register(deps)  # the holder tries again
    assert len(mail_to(deps, "sam@example.com")) == 1
    deps.mailer.fail = 1
    checked = services.check_certificate("FA/1002", "SW1A 2AA", deps)
    delivery = parse_delivery_details(delivery_form(email="jo@example.com", contact_consent="yes"))
    placed = services.confirm_order(checked, delivery, new_order_reference(), deps)
    assert deps.orders.get(placed.reference).is_confirmed or deps.orders.get(placed.reference).awaits_payment
