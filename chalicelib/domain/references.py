"""Normalising what people type: certificate references and UK postcodes."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from .errors import InvalidInput

_NOT_ALPHANUMERIC = re.compile(r"[^0-9A-Z]")
# The shape of every UK postcode's outward and inward codes (BS 7666), plus the one oddity GIR 0AA.
_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?|GIR)([0-9][A-Z]{2})")

POSTCODE_MESSAGE = "Enter a full UK postcode"
REFERENCE_MESSAGE = "Enter your certificate reference"
REFERENCE_FORMAT_MESSAGE = "Enter your certificate reference as it is shown on your certificate"


@dataclass(frozen=True)
class ReferenceRules:
    """The licensing system's format rule for references, from configuration."""

    pattern: str = r"[A-Z0-9]{4,24}"

    def accepts(self, normalised: str) -> bool:
        return re.fullmatch(self.pattern, normalised) is not None


def normalise_certificate_reference(raw: str, rules: ReferenceRules) -> str:
    """Upper-case the reference and drop spaces and punctuation people add or leave out."""
    cleaned = _NOT_ALPHANUMERIC.sub("", (raw or "").upper())
    if not cleaned:
        raise InvalidInput({"reference": REFERENCE_MESSAGE})
    if not rules.accepts(cleaned):
        raise InvalidInput({"reference": REFERENCE_FORMAT_MESSAGE})
    return cleaned


@dataclass(frozen=True)
class Postcode:
    outward: str
    inward: str

    def __str__(self) -> str:
        return f"{self.outward} {self.inward}"

    @property
    def district(self) -> str:
        return self.outward

    @property
    def sector(self) -> str:
        return f"{self.outward} {self.inward[0]}"


def parse_postcode(raw: str, field: str = "postcode") -> Postcode:
    """Accept a postcode as people type it ('sw1a1aa', ' SW1A  1AA') and return its standard form."""
    cleaned = _NOT_ALPHANUMERIC.sub("", (raw or "").upper())
    match = _POSTCODE.fullmatch(cleaned)
    if not match:
        raise InvalidInput({field: POSTCODE_MESSAGE})
    return Postcode(match.group(1), match.group(2))


# Crockford's base32: no I, L, O or U, so a reference read aloud cannot be misheard as another.
_READABLE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_REFERENCE_PATTERN = re.compile(r"TK-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}")


def new_order_reference() -> str:
    """An unguessable order reference: 10 symbols of 5 bits, 50 bits of randomness."""
    symbols = "".join(secrets.choice(_READABLE_ALPHABET) for _ in range(10))
    return f"TK-{symbols[:5]}-{symbols[5:]}"


def normalise_order_reference(raw: str) -> str | None:
    """'tk 7k3mq 9x2hd' -> 'TK-7K3MQ-9X2HD'; None when it cannot be an order reference."""
    cleaned = _NOT_ALPHANUMERIC.sub("", (raw or "").upper())
    if not cleaned.startswith("TK") or len(cleaned) != 12:
        return None
    candidate = f"TK-{cleaned[2:7]}-{cleaned[7:]}"
    return candidate if ORDER_REFERENCE_PATTERN.fullmatch(candidate) else None


def fulfilment_id_of(order_reference: str, attempt: int = 1) -> str:
    """The kit maker's id for an order's fulfilment: 'TK-7K3MQ-9X2HD' -> 'F-7K3MQ-9X2HD' for the
    first attempt, and 'F-7K3MQ-9X2HD-2', '-3'... for each later one (a replacement, a re-release).
    Derived, never reused; order_reference_of and fulfilment_attempt_of are its inverses."""
    base = "F-" + order_reference.removeprefix("TK-")
    return base if attempt <= 1 else f"{base}-{attempt}"


# A later attempt's suffix: '-2' onwards, no leading zero, so every id has one spelling.
_ATTEMPT_SUFFIX = re.compile(r"-([2-9]|[1-9][0-9]{1,2})")


def _split_fulfilment_id(fulfilment_id: object) -> tuple[str, int] | None:
    """(order reference, attempt) of a fulfilment id, or None when it is not one."""
    if not isinstance(fulfilment_id, str) or not fulfilment_id.upper().startswith("F-"):
        return None
    body, attempt = fulfilment_id[2:], 1
    if len(body) > 11:
        suffix = _ATTEMPT_SUFFIX.fullmatch(body[11:])
        if suffix is None:
            return None
        body, attempt = body[:11], int(suffix.group(1))
    reference = normalise_order_reference("TK" + body)
    return None if reference is None else (reference, attempt)


def order_reference_of(fulfilment_id: object) -> str | None:
    """'F-7K3MQ-9X2HD' (or a later attempt's 'F-7K3MQ-9X2HD-2') -> 'TK-7K3MQ-9X2HD'; None when it
    is not a fulfilment id."""
    split = _split_fulfilment_id(fulfilment_id)
    return None if split is None else split[0]


def fulfilment_attempt_of(fulfilment_id: object) -> int | None:
    """'F-7K3MQ-9X2HD' -> 1, 'F-7K3MQ-9X2HD-2' -> 2; None when it is not a fulfilment id."""
    split = _split_fulfilment_id(fulfilment_id)
    return None if split is None else split[1]
