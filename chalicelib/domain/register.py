"""The holder register: what the licensing system exports, and what tracekit keeps of it.

tracekit never stores a clear certificate reference or postcode. A row is keyed by an HMAC of the
normalised reference under a secret key (a plain hash of a short reference is brute-forced in
seconds), and the postcode is kept only as an HMAC bound to that reference.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Callable, TypeVar

from .errors import InvalidInput
from .references import Postcode, ReferenceRules, normalise_certificate_reference, parse_postcode

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


class CertificateStatus(str, Enum):
    IN_FORCE = "in_force"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SURRENDERED = "surrendered"
    CANCELLED = "cancelled"


class CertificateType(str, Enum):
    FIREARM = "firearm"
    SHOTGUN = "shotgun"
    BOTH = "both"


@dataclass(frozen=True)
class RegisterEntry:
    """One certificate as tracekit stores it: only what eligibility needs."""

    reference_key: str
    postcode_mac: str
    status: CertificateStatus
    expires_on: date
    free_kit: bool

    def is_current(self, today: date) -> bool:
        return self.status is CertificateStatus.IN_FORCE and self.expires_on >= today


class RegisterKeys:
    """Keyed hashing of references and postcodes with the register secret."""

    def __init__(self, secret: bytes):
        if len(secret) < 32:
            raise ValueError("the register key must be at least 32 bytes")
        self._secret = secret

    def reference_key(self, normalised_reference: str) -> str:
        return self._mac(b"ref\x00" + normalised_reference.encode())

    def postcode_mac(self, normalised_reference: str, postcode: Postcode) -> str:
        return self._mac(b"pc\x00" + normalised_reference.encode() + b"\x00" + str(postcode).encode())

    def _mac(self, message: bytes) -> str:
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RegisterRow:
    """A validated row of the licensing system's export, still in the clear (never stored)."""

    reference: str
    certificate_type: CertificateType
    status: CertificateStatus
    expires_on: date
    postcode: Postcode
    free_kit: bool

    def to_entry(self, keys: RegisterKeys) -> RegisterEntry:
        return RegisterEntry(
            reference_key=keys.reference_key(self.reference),
            postcode_mac=keys.postcode_mac(self.reference, self.postcode),
            status=self.status,
            expires_on=self.expires_on,
            free_kit=self.free_kit,
        )


REGISTER_COLUMNS = ("certificate_reference", "certificate_type", "status", "expiry_date", "postcode", "free_kit")
_TRUE = {"y", "yes", "true", "1"}
_FALSE = {"", "n", "no", "false", "0"}


def parse_register_row(row: dict[str, str], rules: ReferenceRules) -> RegisterRow:
    """Validate one CSV row; raises InvalidInput naming every bad column."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {
        "reference": _field(
            errors,
            "certificate_reference",
            lambda: normalise_certificate_reference(row.get("certificate_reference", ""), rules),
        ),
        "certificate_type": _field(
            errors, "certificate_type", lambda: _enum(CertificateType, row.get("certificate_type"))
        ),
        "status": _field(errors, "status", lambda: _enum(CertificateStatus, row.get("status"))),
        "expires_on": _field(errors, "expiry_date", lambda: _parse_date(row.get("expiry_date"))),
        "postcode": _field(errors, "postcode", lambda: parse_postcode(row.get("postcode", ""))),
        "free_kit": _field(errors, "free_kit", lambda: _parse_flag(row.get("free_kit"))),
    }
    if errors:
        raise InvalidInput(errors)
    return RegisterRow(**fields)


def _field(errors: dict[str, str], column: str, parse: Callable[[], T]) -> T | None:
    try:
        return parse()
    except (InvalidInput, ValueError) as exc:
        errors[column] = _describe(exc)
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return next(iter(exc.errors.values()))
    return str(exc)


def _enum(kind: type[E], raw: str | None) -> E:
    value = (raw or "").strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value.replace("_", " ") for member in kind)
        raise ValueError(f"must be one of: {allowed}") from None


def _parse_date(raw: str | None) -> date:
    """ISO 8601 (2027-03-31) or the UK day-first form (31/03/2027); both are unambiguous."""
    text = (raw or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError("must be a date like 2027-03-31 or 31/03/2027")


def _parse_flag(raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be yes or no (or left empty)")
