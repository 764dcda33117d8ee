"""The Firearms Enquiry Team's contact register (chalicelib.domain.contacts): a holder registers an
address by proving the certificate and following the link emailed to it; anyone who receives a
contact email can withdraw that address by its link, or ask for a withdrawal link on the withdraw
page. Every answer after the certificate is proved is the same whatever happened (sent, limited,
already registered, not registered), so the pages reveal nothing about who is registered.

An email is sent only within the limits (domain.contacts.mail_counters): per certificate, per
address and per client address. A send that fails is logged and counted; the holder can ask
again. The notice to a replaced address is held on the contact in the same write that replaces
it, and the relay's schedule sends any the confirming request could not (send_contact_notices).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from ..domain.contacts import (
    CONFIRM,
    WITHDRAW,
    ContactLink,
    confirm_contact,
    mail_counters,
    normalised_email,
    parse_email,
    parse_registration,
    token_hash,
    usable,
)
from ..domain.errors import ConcurrentChange, InvalidInput, MailUnavailable
from ..domain.register import CertificateStatus
from ..domain.throttle import UNKNOWN_ADDRESS, address_key, reservation
from ..ports import Contacts, Register
from .dependencies import Dependencies
from .ordering import certificate_form_errors, prove_certificate

log = logging.getLogger("tracekit")

REGISTRATION_FIELDS = ("reference", "postcode", "email", "contact_consent")


def request_registration(form: dict[str, str], deps: Dependencies, client_address: str = UNKNOWN_ADDRESS) -> None:
    """The registration form: the email and consent read, then the certificate proved exactly as
    the order check proves it (CertificateNotAccepted, the same counters), then a confirmation
    link emailed if the limits allow. InvalidInput names every field that cannot be read."""
    try:
        email = parse_registration(form)
    except InvalidInput as exc:
        errors = {**certificate_form_errors(form.get("reference", ""), form.get("postcode", ""), deps), **exc.errors}
        raise InvalidInput(errors) from None
    certificate_key = prove_certificate(form.get("reference", ""), form.get("postcode", ""), deps, client_address)
    offer_registration(certificate_key, email, deps, client_address)


def offer_registration(certificate_key: str, email: str, deps: Dependencies, client_address: str) -> bool:
    """A confirmation link for this address and certificate, emailed if the limits allow (the order
    journey's tick box comes here too). True if it went. Raises MailUnavailable if SES refused it,
    so the holder is asked to try again (the form's answer says so whoever is registered: every
    address within the limits is sent to)."""
    now, email_key = deps.clock(), _email_key(email, deps)
    if not _within_limits(certificate_key, email_key, deps, client_address, now):
        return False
    token, hours = secrets.token_urlsafe(32), deps.settings.contact_link_hours
    expires = now + timedelta(hours=hours)
    deps.contacts.add_link(ContactLink(token_hash(token), CONFIRM, email_key, expires, certificate_key, email, now))
    withdraw_url = _withdraw_url(email_key, deps, now)
    confirm_url = _url(deps, "/contact/confirm", token)
    return _send(email, "confirm", deps, confirm_url=confirm_url, withdraw_url=withdraw_url, hours=str(hours))


def check_link(token: str, purpose: str, deps: Dependencies) -> None:
    """Before a link's page offers its button: ContactLinkNotUsable if it cannot be used."""
    usable(deps.contacts.link(token_hash(token)), purpose, deps.clock())


def confirm_registration(token: str, deps: Dependencies) -> None:
    """A confirmation link followed (its page's button): the address becomes the certificate's one
    contact, in one write with the link's use; an address it replaced is told. Raises
    ContactLinkNotUsable (unknown, used, expired)."""
    now = deps.clock()
    link = usable(deps.contacts.link(token_hash(token)), CONFIRM, now)
    assert link.certificate_key is not None
    for attempt in (1, 2):  # a confirmation of another address for the certificate may land between
        confirmation = confirm_contact(link, deps.contacts.contact(link.certificate_key), now)
        try:
            deps.contacts.confirm(link, confirmation, now)
            break
        except ConcurrentChange:
            if attempt == 2:
                raise
    log.info("contact address confirmed")
    if confirmation.replaced is not None:
        tell_replaced(link.certificate_key, deps)


def tell_replaced(certificate_key: str, deps: Dependencies) -> bool:
    """The address a confirmation replaced is told so (with its own withdrawal link), and the notice
    goes; if the email cannot go it stays for send_contact_notices. True if it went."""
    address = deps.contacts.replaced_address(certificate_key)
    if address is None:
        return False
    now = deps.clock()
    withdraw_url = _withdraw_url(_email_key(address, deps), deps, now)
    if deps.mailer is not None and not _send_or_log(address, "replaced", deps, withdraw_url=withdraw_url):
        return False
    deps.contacts.end_notice(certificate_key)
    return deps.mailer is not None


def send_contact_notices(deps: Dependencies) -> int:
    """Scheduled (with the relay): every replaced address not yet told. Idempotent: a notice sent
    leaves the contact. Returns how many went."""
    return sum(tell_replaced(key, deps) for key in deps.contacts.notices_due())


def request_withdrawal(raw_email: str, deps: Dependencies, client_address: str = UNKNOWN_ADDRESS) -> None:
    """The withdraw page: a withdrawal link emailed to the address, if it is registered and the
    limits allow (the limits are counted either way). The page says the same in every case."""
    email = parse_email(raw_email)
    now, email_key = deps.clock(), _email_key(email, deps)
    if not _within_limits(None, email_key, deps, client_address, now) or not deps.contacts.registered_at(email_key):
        return
    hours = deps.settings.contact_link_hours
    url = _withdraw_url(email_key, deps, now, timedelta(hours=hours))
    _send_or_log(email, "withdraw", deps, withdraw_url=url, hours=str(hours))  # a failure must not show


def withdraw(token: str, deps: Dependencies) -> int:
    """A withdrawal link followed (its page's button): every registration of its address goes at
    once, in one write with the link's use. Raises ContactLinkNotUsable. How many went."""
    now = deps.clock()
    link = usable(deps.contacts.link(token_hash(token)), WITHDRAW, now)
    try:
        removed = deps.contacts.withdraw(link, now)
    except ConcurrentChange:  # an address confirmed for one more certificate meanwhile
        removed = deps.contacts.withdraw(link, now)
    log.info("contact address withdrawn (%d registration(s))", removed)
    return removed


def _within_limits(
    certificate_key: str | None, email_key: str, deps: Dependencies, client_address: str, now: datetime
) -> bool:
    client_key = deps.keys.reference_key("mailip:" + address_key(client_address))
    granted = deps.attempts.reserve(reservation(mail_counters(certificate_key, email_key, client_key), now))
    if not granted:
        log.info("contact email not sent: a limit was reached")
        deps.metrics.report({"ContactEmailsLimited": 1})
    return granted


def _withdraw_url(email_key: str, deps: Dependencies, now: datetime, life: timedelta | None = None) -> str:
    """A new withdrawal link for the address (a contact email's own: long-lived, unless `life`)."""
    token = secrets.token_urlsafe(32)
    expires = now + (life or timedelta(days=deps.settings.contact_withdraw_link_days))
    deps.contacts.add_link(ContactLink(token_hash(token), WITHDRAW, email_key, expires))
    return _url(deps, "/contact/withdraw/confirm", token)


def _send(email: str, kind: str, deps: Dependencies, **links: str) -> bool:
    """True if it went, False if mail is off; MailUnavailable (logged and counted) if SES refused."""
    if deps.mailer is None:  # mail is switched off (no EMAIL_FROM)
        return False
    subject, body = deps.emails.render_contact(kind, **links)
    try:
        deps.mailer.send(email, subject, body)
    except MailUnavailable as exc:
        log.error("contact %s email not sent: %s", kind, exc)
        deps.metrics.report({"EmailFailures": 1})
        raise
    log.info("contact %s email sent", kind)
    return True


def _send_or_log(email: str, kind: str, deps: Dependencies, **links: str) -> bool:
    try:
        return _send(email, kind, deps, **links)
    except MailUnavailable:
        return False


def _email_key(email: str, deps: Dependencies) -> str:
    return deps.keys.email_key(normalised_email(email))


def _url(deps: Dependencies, path: str, token: str) -> str:
    return f"{deps.settings.app_base_url}{path}?token={token}"


def contact_list(deps: Dependencies) -> list[tuple[str, datetime, datetime]]:
    """The Firearms Enquiry Team's list: (address, consented, confirmed) of every confirmed contact
    not withdrawn, by address; nothing else (no certificate, no name)."""
    rows = [(email, contact.consented_at, contact.confirmed_at) for email, contact in deps.contacts.confirmed()]
    return sorted(rows, key=lambda row: (row[0].casefold(), row[1]))


def remove_departed_contacts(register: Register, contacts: Contacts) -> int:
    """After an import: the contacts of certificates no longer in force in the live register (dropped
    from the licensing system's export, revoked or surrendered) go. Idempotent; how many went."""
    state = register.state()
    if state.live is None:
        return 0
    in_force = {e.reference_key for e in register.entries(state.live) if e.status is CertificateStatus.IN_FORCE}
    departed = [key for key in contacts.certificate_keys() if key not in in_force]
    removed = contacts.remove(departed) if departed else 0
    log.info("contacts of %d certificate(s) no longer in force removed", removed)
    return removed
