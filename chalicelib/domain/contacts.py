"""The Firearms Enquiry Team's contact register: one confirmed email address per certificate, given
with consent, confirmed by a link sent to it (double opt-in) and withdrawn at any time.

Links are bearer tokens: random, sent once in an email and stored only as their SHA-256, each for
one purpose (confirm an address for a certificate, or withdraw an address), used once, and dead
after their expiry. Nothing here says an address belongs to a firearm certificate holder: the
emails are worded so that a reader of one learns nothing about the recipient's certificate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from .errors import ContactLinkNotUsable, InvalidInput
from .throttle import Counters, Limits

CONFIRM = "confirm"  # a link that registers an address for a certificate
WITHDRAW = "withdraw"  # a link that withdraws an address from every certificate it is registered for
CONSENTED = "yes"  # the consent box's value when ticked
EMAIL_LIMIT = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# Emails a day, so that nobody can use the service to send mail at a holder or an address: a few for
# a certificate and for an address (a holder who mistypes once or twice is well within them), more
# for a client address (a household or an office shares one).
CERTIFICATE_MAIL_LIMITS = Limits(per_window=3, per_day=5)
ADDRESS_MAIL_LIMITS = Limits(per_window=3, per_day=5)
CLIENT_MAIL_LIMITS = Limits(per_window=20, per_day=100)


class LinkState(str, Enum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class ContactLink:
    """A link's stored half. `email` is the address to register (confirm links only), as the store
    keeps it (sealed); `certificate_key` the certificate it is for (confirm links only)."""

    token_hash: str
    purpose: str
    email_key: str
    expires_at: datetime
    certificate_key: str | None = None
    email: str | None = None
    consented_at: datetime | None = None
    used_at: datetime | None = None


@dataclass(frozen=True)
class Contact:
    """A confirmed address for one certificate. `email` as the store keeps it (sealed)."""

    certificate_key: str
    email_key: str
    email: str
    consented_at: datetime
    confirmed_at: datetime


@dataclass(frozen=True)
class Confirmation:
    """What confirming a link does: the certificate's contact becomes `contact`; `replaced` is the
    address it replaces, to be told so (None when there was none, or it is the same address)."""

    contact: Contact
    replaced: Contact | None


def token_hash(token: str) -> str:
    """What a link's token is stored and found under. The token is 256 random bits, so an unkeyed
    hash is enough: nobody can guess a token from its hash or find one that matches."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalised_email(raw: str) -> str:
    """The address as it is compared and keyed: NFKC, trimmed, case-folded (mail systems treat
    the local part's case as the same mailbox in practice)."""
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def parse_email(raw: str | None, field: str = "email") -> str:
    """The address as written (trimmed), or InvalidInput."""
    email = (raw or "").strip()
    if not email:
        raise InvalidInput({field: "Enter your email address"})
    if len(email) > EMAIL_LIMIT or not _EMAIL.fullmatch(email) or any(ord(c) < 32 for c in email):
        raise InvalidInput({field: "Enter an email address in the correct format, like name@example.com"})
    return email


def parse_registration(form: dict[str, str]) -> str:
    """The registration form's email and consent: the address, or InvalidInput for both."""
    errors: dict[str, str] = {}
    email = ""
    try:
        email = parse_email(form.get("email"))
    except InvalidInput as exc:
        errors.update(exc.errors)
    if form.get("contact_consent") != CONSENTED:  # a tick, and nothing else, is consent
        errors["contact_consent"] = "Select yes if the Firearms Enquiry Team may contact you by email"
    if errors:
        raise InvalidInput(errors)
    return email


def usable(link: ContactLink | None, purpose: str, now: datetime) -> ContactLink:
    """The link, if it can still be used for `purpose`; otherwise ContactLinkNotUsable saying why
    (unknown, used, expired) so the page can say what to do next."""
    if link is None or link.purpose != purpose:
        raise ContactLinkNotUsable(LinkState.UNKNOWN.value, purpose)
    if link.used_at is not None:
        raise ContactLinkNotUsable(LinkState.USED.value, purpose)
    if link.expires_at <= now:
        raise ContactLinkNotUsable(LinkState.EXPIRED.value, purpose)
    return link


def confirm_contact(link: ContactLink, current: Contact | None, now: datetime) -> Confirmation:
    """A confirm link followed: its address becomes the certificate's one contact, consented when
    the holder asked, confirmed now. An address it replaces is told, unless it is the same one."""
    assert link.certificate_key is not None and link.email is not None and link.consented_at is not None
    contact = Contact(link.certificate_key, link.email_key, link.email, link.consented_at, now)
    replaced = current if current is not None and current.email_key != link.email_key else None
    return Confirmation(contact, replaced)


def mail_counters(certificate_key: str | None, email_key: str, client_key: str) -> tuple[Counters, ...]:
    """The counters an email about the contact register takes a place in (domain.throttle)."""
    counters = [
        Counters(f"mail:{email_key}", ADDRESS_MAIL_LIMITS),
        Counters(f"mailip:{client_key}", CLIENT_MAIL_LIMITS),
    ]
    if certificate_key is not None:
        counters.insert(0, Counters(f"mailref:{certificate_key}", CERTIFICATE_MAIL_LIMITS))
    return tuple(counters)
