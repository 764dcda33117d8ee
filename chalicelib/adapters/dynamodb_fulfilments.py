"""The kit maker's lists and the relay's work list, each a query on a sparse index of the orders.
The kit maker's open list opens the recipient's sealed fields (kms_fields); nothing else does."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from types import SimpleNamespace

from ..domain.errors import InvalidInput
from ..domain.fulfilment import (
    AddressAmendment,
    Cancellation,
    OpenFulfilment,
    Page,
    address_amendment,
    fulfilment_message,
)
from ..domain.references import fulfilment_id_of
from ..domain.times import from_iso, to_iso
from .dynamodb import RECIPIENT_FIELDS
from .dynamodb_order_items import YES, field_from
from .kms_fields import PersonalFields


class FulfilmentQueries:
    """The manufacturer's lists and the relay's work list, each a query on a sparse index."""

    def __init__(self, models, product_code: str, fields: PersonalFields):
        self._orders = models.orders
        self._product_code = product_code
        self._fields = fields

    def relay_pending(self, limit: int = 100) -> list[str]:
        index = self._orders.relay_pending_index
        return [r.order_ref for r in index.query(YES, limit=limit)]

    def open_fulfilments(self, cursor: str | None, limit: int) -> Page:
        results = self._orders.open_fulfilments_index.query(
            YES, limit=limit, last_evaluated_key=decode_cursor(cursor, ("fulfilment_open", "released_at"))
        )
        items = [self._open(record) for record in results]
        return Page(items, encode_cursor(results.last_evaluated_key))

    def released_before(self, cutoff: datetime) -> list[str]:
        """Fulfilment ids of open orders released before `cutoff` (the health check's stuck ones),
        oldest first, from the index's keys alone: nothing personal is read or opened."""
        index, released_at = self._orders.open_fulfilments_index, self._orders.released_at
        results = index.query(
            YES, range_key_condition=released_at < to_iso(cutoff), attributes_to_get=["order_ref", "fulfilment_attempt"]
        )
        return [fulfilment_id_of(r.order_ref, _attempt(r)) for r in results]

    def cancellations(self, cursor: str | None, limit: int) -> Page:
        results = self._orders.cancellations_index.query(
            YES, limit=limit, last_evaluated_key=decode_cursor(cursor, ("cancellation_pending", "cancelled_at"))
        )
        items = [
            Cancellation(fulfilment_id_of(r.order_ref, _attempt(r)), r.order_ref, from_iso(r.cancelled_at))
            for r in results
        ]
        return Page(items, encode_cursor(results.last_evaluated_key))

    def amendments(self, cursor: str | None, limit: int) -> Page:
        results = self._orders.amendments_index.query(
            YES, limit=limit, last_evaluated_key=decode_cursor(cursor, ("amendment_pending", "amended_at"))
        )
        items = [self._amendment(record) for record in results]
        return Page(items, encode_cursor(results.last_evaluated_key))

    def _amendment(self, record) -> AddressAmendment:
        """From the index's projection: the current recipient and the amendment, nothing else."""
        delivery = SimpleNamespace(**self._recipient(record))
        number, amended_at = int(record.amendments_issued), from_iso(record.amended_at)
        return address_amendment(record.order_ref, delivery, number, amended_at, self._product_code)

    def _recipient(self, record) -> dict[str, str]:
        ref = record.order_ref
        return {name: self._fields.open(ref, name, getattr(record, name) or "") for name in RECIPIENT_FIELDS}

    def _open(self, record) -> OpenFulfilment:
        """From the index's projection: the recipient, the state and the times, nothing else."""
        opened = {
            name: self._fields.open(record.order_ref, name, getattr(record, name) or "") for name in RECIPIENT_FIELDS
        }
        delivery = SimpleNamespace(**opened)
        since = from_iso(record.relay_since)
        message = fulfilment_message(record.order_ref, delivery, self._product_code, since, _attempt(record))
        return OpenFulfilment(message, field_from(record, "fulfilment"), from_iso(record.released_at))


def _attempt(record) -> int:
    """The record's fulfilment attempt (absent on orders from before attempts: the first)."""
    return int(getattr(record, "fulfilment_attempt", None) or 1)


def encode_cursor(last_evaluated_key: dict | None) -> str | None:
    if not last_evaluated_key:
        return None
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, index_keys: tuple[str, str]) -> dict | None:
    """A cursor is only ever a key of this index: anything else is refused, not passed on."""
    if not cursor:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise InvalidInput({"cursor": "cursor is not one this API gave out"}) from None
    expected = {"order_ref", *index_keys}
    if not isinstance(plain, dict) or set(plain) != expected or not all(isinstance(v, str) for v in plain.values()):
        raise InvalidInput({"cursor": "cursor is not one this API gave out"})
    return {name: {"S": value} for name, value in plain.items()}
