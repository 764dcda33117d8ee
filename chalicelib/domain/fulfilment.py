"""The fulfilment order: all the manufacturer learns about an order, and what it reports back.

Never the certificate, its type, the holder's email, the price paid or how eligibility was
decided: the recipient must not be identifiable as a gun owner from what leaves tracekit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from .times import to_iso
from .errors import InvalidInput
from .orders import Dispatch, FulfilmentState, Order
from .references import fulfilment_id_of

SCHEMA_VERSION = 1
# The manufacturer API's OpenAPI document states these same rules as patterns, with whitespace
# spelled out (JSON Schema's \s is ECMAScript's, Python's differs on U+0085, U+001C-F and U+FEFF).
SPACES = "\t\n\v\f\r \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
# Refused in every text a partner sends: control characters (Unicode category Cc, tab and line
# breaks included: a reason with "\n" forged a line in an operator's log) and the controls that
# turn text around (U+202E made a tracking reference read backwards in the holder's email).
CONTROLS = "\x00-\x1f\x7f-\x9f"
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_TEXT = re.compile(f"[^{CONTROLS}{BIDI_CONTROLS}]{{0,60}}")
_REASON = re.compile(f"[^{CONTROLS}{BIDI_CONTROLS}]{{0,500}}")
_PLAIN = "no control or text-direction characters (tabs and line breaks included)"


def _text(raw: object, allowed: re.Pattern[str]) -> str | None:
    """`raw` if it is a string of the allowed characters and length with something other than
    whitespace in it, without its leading and trailing whitespace; otherwise None."""
    if not isinstance(raw, str) or not allowed.fullmatch(raw):
        return None
    return raw.strip(SPACES) or None


@dataclass(frozen=True)
class FulfilmentMessage:
    fulfilment_id: str
    order_reference: str
    product_code: str
    quantity: int
    recipient_name: str
    address_lines: tuple[str, ...]
    town: str
    postcode: str
    created_at: datetime

    @property
    def deduplication_id(self) -> str:
        """One message per fulfilment order, however often it is sent."""
        return self.fulfilment_id

    def to_document(self) -> dict[str, Any]:
        """The versioned document (schemas/fulfilment-message.v1.json)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "fulfilment_id": self.fulfilment_id,
            "order_reference": self.order_reference,
            "product_code": self.product_code,
            "quantity": self.quantity,
            "recipient": {
                "name": self.recipient_name,
                "address_lines": list(self.address_lines),
                "town": self.town,
                "postcode": self.postcode,
            },
            "created_at": to_iso(self.created_at),
        }


@dataclass(frozen=True)
class OpenFulfilment:
    """A row of the manufacturer's work list: the message's fields, its state and when released."""

    message: FulfilmentMessage
    state: FulfilmentState
    released_at: datetime

    def to_document(self) -> dict[str, Any]:
        return {**self.message.to_document(), "state": self.state.value, "released_at": to_iso(self.released_at)}


@dataclass(frozen=True)
class Cancellation:
    fulfilment_id: str
    order_reference: str
    cancelled_at: datetime

    def to_document(self) -> dict[str, Any]:
        return {
            "fulfilment_id": self.fulfilment_id,
            "order_reference": self.order_reference,
            "cancelled_at": to_iso(self.cancelled_at),
        }


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def fulfilment_message_for(order: Order, product_code: str) -> FulfilmentMessage:
    confirmed_at = order.confirmed_at or order.created_at
    return fulfilment_message(order.reference, order.delivery, product_code, confirmed_at, order.fulfilment_attempt)


class Recipient(Protocol):
    """Whom a parcel goes to: the delivery details, or the kit maker's list's projection of them."""

    @property
    def full_name(self) -> str: ...
    @property
    def address_line_1(self) -> str: ...
    @property
    def address_line_2(self) -> str: ...
    @property
    def town(self) -> str: ...
    @property
    def postcode(self) -> str: ...


def fulfilment_message(
    reference: str, delivery: Recipient, product_code: str, confirmed_at: datetime, attempt: int = 1
) -> FulfilmentMessage:
    """The parcel's message: one kit to the recipient's name and address, nothing else (a
    replacement's message is like any other but for its attempt's fulfilment id)."""
    lines = tuple(line for line in (delivery.address_line_1, delivery.address_line_2) if line)
    return FulfilmentMessage(
        fulfilment_id=fulfilment_id_of(reference, attempt),
        order_reference=reference,
        product_code=product_code,
        quantity=1,
        recipient_name=delivery.full_name,
        address_lines=lines,
        town=delivery.town,
        postcode=delivery.postcode,
        created_at=confirmed_at,
    )


AMENDMENT_KIND = "address_amendment"


@dataclass(frozen=True)
class AddressAmendment:
    """The holder's new address for a fulfilment the kit maker already has
    (schemas/fulfilment-amendment.v1.json): the whole recipient block again, numbered per order."""

    message: FulfilmentMessage  # the fulfilment as it now reads: its recipient is the new one
    amendment: int
    amended_at: datetime

    @property
    def deduplication_id(self) -> str:
        """One message per amendment, however often it is sent; distinct from the fulfilment's."""
        return f"{self.message.fulfilment_id}:amendment:{self.amendment}"

    def to_document(self) -> dict[str, Any]:
        fulfilment = self.message.to_document()
        return {
            "kind": AMENDMENT_KIND,
            "schema_version": SCHEMA_VERSION,
            "fulfilment_id": fulfilment["fulfilment_id"],
            "order_reference": fulfilment["order_reference"],
            "amendment": self.amendment,
            "recipient": fulfilment["recipient"],
            "amended_at": to_iso(self.amended_at),
        }


def address_amendment(
    reference: str, recipient: Recipient, amendment: int, amended_at: datetime, product_code: str
) -> AddressAmendment:
    return AddressAmendment(fulfilment_message(reference, recipient, product_code, amended_at), amendment, amended_at)


def parse_dispatch(fields: dict[str, Any], released_at: datetime | None, now: datetime) -> Dispatch:
    """The manufacturer's dispatch report, every field checked; all errors reported at once."""
    errors: dict[str, str] = {}
    kit_code = fields.get("kit_code")
    kit_code = kit_code.strip(SPACES) if isinstance(kit_code, str) else ""
    carrier, tracking = (_text(fields.get(k), _TEXT) for k in ("carrier", "tracking_reference"))
    if not _CODE.fullmatch(kit_code):
        errors["kit_code"] = "kit_code must be 1-40 letters, digits or hyphens"
    if carrier is None:
        errors["carrier"] = f"carrier must be 1-60 printable characters, {_PLAIN}"
    if tracking is None:
        errors["tracking_reference"] = f"tracking_reference must be 1-60 printable characters, {_PLAIN}"
    dispatched_at = _dispatch_time(fields.get("dispatched_at"), released_at, now, errors)
    if errors or carrier is None or tracking is None or dispatched_at is None:
        raise InvalidInput(errors)
    return Dispatch(kit_code, carrier, tracking, dispatched_at)


def _dispatch_time(raw: object, released_at: datetime | None, now: datetime, errors: dict[str, str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        errors["dispatched_at"] = "dispatched_at must be an ISO 8601 time with its offset, like 2026-11-29T10:15:00Z"
        return None
    if moment.tzinfo is None:
        errors["dispatched_at"] = "dispatched_at must carry its UTC offset (Z or +00:00)"
    elif moment > now + timedelta(minutes=5):
        errors["dispatched_at"] = "dispatched_at is in the future"
    elif released_at is not None and moment < released_at - timedelta(minutes=5):
        errors["dispatched_at"] = "dispatched_at is before the order was released to you"
    return moment


def parse_reason(raw: object) -> str:
    reason = _text(raw, _REASON)
    if reason is None:
        raise InvalidInput({"reason": f"reason must be 1-500 characters, not only spaces, {_PLAIN}"})
    return reason
