"""The fulfilment order: all the manufacturer learns about an order, and what it reports back.

Never the certificate, its type, the holder's email, the price paid or how eligibility was
decided: the recipient must not be identifiable as a gun owner from what leaves tracekit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .changes import Effect, Outcome, Source, record_change, unchanged
from .errors import FulfilmentConflict, InvalidInput, OrderNotFound
from .orders import Dispatch, FulfilmentState, Order

SCHEMA_VERSION = 1
# The manufacturer API's OpenAPI document states these same rules as patterns, with whitespace
# spelled out (JSON Schema's \s is ECMAScript's, Python's differs on U+0085, U+001C-F and U+FEFF).
SPACES = "\t\n\v\f\r \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{0,60}")
_REASON = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]{0,500}")


def _text(raw, allowed: re.Pattern) -> str | None:
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

    def to_document(self) -> dict:
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
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class OpenFulfilment:
    """A row of the manufacturer's work list: the message's fields, its state and when released."""

    message: FulfilmentMessage
    state: FulfilmentState
    released_at: datetime

    def to_document(self) -> dict:
        return {**self.message.to_document(), "state": self.state.value, "released_at": _iso(self.released_at)}


@dataclass(frozen=True)
class Cancellation:
    fulfilment_id: str
    order_reference: str
    cancelled_at: datetime

    def to_document(self) -> dict:
        return {
            "fulfilment_id": self.fulfilment_id,
            "order_reference": self.order_reference,
            "cancelled_at": _iso(self.cancelled_at),
        }


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None


def fulfilment_id_of(order_reference: str) -> str:
    return "F-" + order_reference.removeprefix("TK-")


def order_reference_of(fulfilment_id: str) -> str | None:
    """'F-7K3MQ-9X2HD' -> 'TK-7K3MQ-9X2HD'; None when it is not a fulfilment id."""
    from .references import normalise_order_reference

    if not isinstance(fulfilment_id, str) or not fulfilment_id.upper().startswith("F-"):
        return None
    return normalise_order_reference("TK" + fulfilment_id[2:])


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def fulfilment_message_for(order: Order, product_code: str) -> FulfilmentMessage:
    delivery = order.delivery
    lines = tuple(line for line in (delivery.address_line_1, delivery.address_line_2) if line)
    return FulfilmentMessage(
        fulfilment_id=order.fulfilment_id,
        order_reference=order.reference,
        product_code=product_code,
        quantity=1,
        recipient_name=delivery.full_name,
        address_lines=lines,
        town=delivery.town,
        postcode=delivery.postcode,
        created_at=order.confirmed_at or order.created_at,
    )


def parse_dispatch(fields: dict, released_at: datetime | None, now: datetime) -> Dispatch:
    """The manufacturer's dispatch report, every field checked; all errors reported at once."""
    errors: dict[str, str] = {}
    kit_code = fields.get("kit_code")
    kit_code = kit_code.strip(SPACES) if isinstance(kit_code, str) else ""
    carrier, tracking = (_text(fields.get(k), _TEXT) for k in ("carrier", "tracking_reference"))
    if not _CODE.fullmatch(kit_code):
        errors["kit_code"] = "kit_code must be 1-40 letters, digits or hyphens"
    if carrier is None:
        errors["carrier"] = "carrier must be 1-60 printable characters"
    if tracking is None:
        errors["tracking_reference"] = "tracking_reference must be 1-60 printable characters"
    dispatched_at = _dispatch_time(fields.get("dispatched_at"), released_at, now, errors)
    if errors:
        raise InvalidInput(errors)
    return Dispatch(kit_code, carrier, tracking, dispatched_at)


def _dispatch_time(raw, released_at: datetime | None, now: datetime, errors: dict[str, str]) -> datetime | None:
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


def parse_reason(raw) -> str:
    reason = _text(raw, _REASON)
    if reason is None:
        raise InvalidInput({"reason": "reason must be 1-500 characters, not only spaces"})
    return reason


def accept(order: Order, source: Source, now: datetime) -> Outcome:
    if order.fulfilment in (FulfilmentState.ACCEPTED, FulfilmentState.DISPATCHED):
        return unchanged(order)
    _require_open(order, "accept")
    return record_change(
        order, source, now, "accepted by the manufacturer", fulfilment=FulfilmentState.ACCEPTED, accepted_at=now
    )


def dispatch(order: Order, details: Dispatch, source: Source, now: datetime) -> Outcome:
    if order.fulfilment is FulfilmentState.DISPATCHED:
        if order.dispatch == details:
            return unchanged(order)
        raise FulfilmentConflict(
            f"{order.fulfilment_id} was already dispatched with kit code "
            f"{order.dispatch.kit_code}; a different dispatch cannot be recorded"
        )
    _require_open(order, "dispatch")
    return record_change(
        order,
        source,
        now,
        f"dispatched by {details.carrier} ({details.tracking_reference})",
        {Effect.EMAIL_DISPATCH} if order.delivery.email else (),
        fulfilment=FulfilmentState.DISPATCHED,
        dispatch=details,
    )


def reject(order: Order, reason: str, source: Source, now: datetime) -> Outcome:
    if order.fulfilment is FulfilmentState.REJECTED:
        return unchanged(order)
    _require_open(order, "reject")
    return record_change(
        order,
        source,
        now,
        f"rejected by the manufacturer: {reason}",
        fulfilment=FulfilmentState.REJECTED,
        rejection_reason=reason,
    )


def acknowledge_cancellation(order: Order, source: Source, now: datetime) -> Outcome:
    if order.released_at is None:
        raise OrderNotFound(order.fulfilment_id)
    if order.fulfilment is not FulfilmentState.CANCELLED:
        raise FulfilmentConflict(f"{order.fulfilment_id} is not cancelled (it is {order.fulfilment.value})")
    if order.cancellation_acknowledged:
        return unchanged(order)
    return record_change(
        order, source, now, "cancellation acknowledged by the manufacturer", cancellation_acknowledged=True
    )


def _require_open(order: Order, action: str) -> None:
    if order.open_for_manufacturer:
        return
    if order.released_at is None:  # never given to the manufacturer: as if it did not exist
        raise OrderNotFound(order.fulfilment_id)
    reasons = {
        FulfilmentState.CANCELLED: "was cancelled because the order was refunded: do not send it",
        FulfilmentState.REJECTED: "was rejected earlier",
        FulfilmentState.DISPATCHED: "was already dispatched",
    }
    why = reasons.get(order.fulfilment, f"is {order.fulfilment.value}")
    raise FulfilmentConflict(f"cannot {action} {order.fulfilment_id}: it {why}")
