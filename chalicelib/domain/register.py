"""The holder register: what the licensing system exports, and what tracekit keeps of it.

tracekit never stores a clear certificate reference or postcode. A row is keyed by an HMAC of the
normalised reference under a secret key (a plain hash of a short reference is brute-forced in
seconds), and the postcode is kept only as an HMAC bound to that reference.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Callable, TypeVar

from .errors import InvalidInput, NothingToRollBack
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
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied per message: the key is set up once

    def reference_key(self, normalised_reference: str) -> str:
        return self._mac(b"ref\x00" + normalised_reference.encode())

    def postcode_mac(self, normalised_reference: str, postcode: Postcode) -> str:
        return self._mac(b"pc\x00" + normalised_reference.encode() + b"\x00" + str(postcode).encode())

    def recipient_key(self, lookup_text: str) -> str:
        """An order's recipient, keyed (delivery.recipient_lookup_text): support finds orders by
        postcode and surname through it, and it names nobody without the key."""
        return self._mac(b"rcpt\x00" + lookup_text.encode())

    def email_key(self, normalised_email: str) -> str:
        """A contact's address, keyed (domain.contacts.normalised_email): how the contact register
        finds an address's registrations without holding the address in clear."""
        return self._mac(b"mail\x00" + normalised_email.encode())

    def _mac(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()


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


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _parse_date(raw: str | None) -> date:
    """ISO 8601 (2027-03-31) or the UK day-first form (31/03/2027); both are unambiguous. (What
    strptime's %Y-%m-%d and %d/%m/%Y accept, at a tenth of its cost: an import parses each row twice.)"""
    text = (raw or "").strip()
    iso, uk = _ISO_DATE.fullmatch(text), _UK_DATE.fullmatch(text)
    try:
        if iso:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if uk:
            return date(int(uk.group(3)), int(uk.group(2)), int(uk.group(1)))
    except ValueError:
        pass
    raise ValueError("must be a date like 2027-03-31 or 31/03/2027")


def _parse_flag(raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be yes or no (or left empty)")


def details_digest(entry: RegisterEntry) -> bytes:
    """Eight bytes standing for what an entry says of its certificate (all but its key): two
    entries with the same digest say the same thing (a chance collision is 1 in 2^64)."""
    details = f"{entry.postcode_mac}\x00{entry.status.value}\x00{entry.expires_on.isoformat()}\x00{entry.free_kit:d}"
    return hashlib.sha256(details.encode()).digest()[:8]


@dataclass(frozen=True)
class RegisterState:
    """Which generation of the register holders are checked against (`live`) and which one a
    rollback restores (`previous`). A generation is the complete register one import wrote; it
    becomes live with one write, so a check reads one generation, never a mix of two."""

    live: int | None = None
    previous: int | None = None
    started: int = 0  # the last generation number handed out (to an import, or to a prune as its fence)
    generations: frozenset[int] = frozenset()  # every generation that may still hold entries
    live_entries: int = 0
    previous_entries: int = 0
    live_since: datetime | None = None
    previous_since: datetime | None = None

    def stale(self, through: int) -> list[int]:
        """Generations that are neither live nor previous, numbered up to `through`: the ones a
        prune deletes (a later number may be an import still writing, which must be left alone)."""
        return sorted(g for g in self.generations if g not in (self.live, self.previous) and g <= through)

    def switched_to(self, generation: int, entries: int, at: datetime) -> "RegisterState":
        return RegisterState(
            live=generation,
            previous=self.live,
            started=self.started,
            generations=self.generations,
            live_entries=entries,
            previous_entries=self.live_entries,
            live_since=at,
            previous_since=self.live_since,
        )

    def rolled_back(self, at: datetime) -> "RegisterState":
        """Live and previous swap places: the previous generation is live again, and a second
        rollback would undo the first."""
        if self.previous is None:
            raise NothingToRollBack()
        return RegisterState(
            live=self.previous,
            previous=self.live,
            started=self.started,
            generations=self.generations,
            live_entries=self.previous_entries,
            previous_entries=self.live_entries,
            live_since=at,
            previous_since=self.live_since,
        )


@dataclass(frozen=True)
class RegisterChange:
    """What an export would do to the live register, entry by entry."""

    added: int
    removed: int
    changed: int
    unchanged: int
    added_lines: tuple[int, ...] = ()  # the first few lines of the file that add an entry
    changed_lines: tuple[int, ...] = ()  # ... and that change one

    @property
    def live_entries(self) -> int:
        return self.removed + self.changed + self.unchanged

    @property
    def entries_after(self) -> int:
        return self.added + self.changed + self.unchanged

    @property
    def is_nothing(self) -> bool:
        return not (self.added or self.removed or self.changed)


def import_refusal(change: RegisterChange, max_removal_percent: int, allow_shrink: bool) -> str | None:
    """Why an export must not become the register, or None. A file with no rows is always
    refused: no register at all would refuse every holder. One that removes more than the allowed
    share of the live register is refused unless the operator says the shrink is expected; the
    first import, into an empty register, removes nothing."""
    if change.entries_after == 0:
        return "the file has no rows: importing it would refuse every holder"
    live = change.live_entries
    if allow_shrink or live == 0 or change.removed * 100 <= max_removal_percent * live:
        return None
    share = change.removed * 100 / live
    return (
        f"the file would remove {change.removed:,} of the {live:,} entries in the live register ({share:.1f}%), "
        f"more than the {max_removal_percent}% REGISTER_MAX_REMOVAL_PERCENT allows: check that the export is "
        "complete, or pass --allow-shrink if so many certificates really have gone"
    )
