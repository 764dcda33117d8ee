"""Finance's read of the orders: day-by-day queries on the creation index and batch gets of only
the finance fields. Neither reads a name or an address."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterable, Iterator

from ..domain.dashboard import CampaignFacts
from ..domain.eligibility import EligibilityReason
from ..domain.kit_statement import KitFacts, earlier_dispatches, earlier_returned
from ..domain.reconciliation import OrderFacts, Period
from ..domain.references import fulfilment_id_of
from ..domain.times import from_iso
from .dynamodb import FINANCE_FIELDS, Models
from .dynamodb_order_items import field_from


class FinanceOrders:
    def __init__(self, models: Models):
        self._orders = models.orders

    def created_in(self, period: Period) -> Iterator[OrderFacts]:
        """Oldest first, one query per UTC day (paginated by PynamoDB), streaming."""
        day = period.start
        while day < period.end:
            for record in self._orders.created_day_index.query(day.isoformat()):
                yield _facts(record)
            day += timedelta(days=1)

    def kits_created_in(self, period: Period) -> Iterator[KitFacts]:
        """The same day-by-day queries, read as the kit maker's statement needs them."""
        day = period.start
        while day < period.end:
            for record in self._orders.created_day_index.query(day.isoformat()):
                yield KitFacts(
                    fulfilment_id_of(record.order_ref, field_from(record, "fulfilment_attempt") or 1),
                    record.eligibility_reason or "",
                    field_from(record, "fulfilment"),
                    _time(record.released_at),
                    _time(record.dispatched_at),
                    _time(record.cancelled_at),
                    earlier_dispatches(field_from(record, "earlier_fulfilments") or ()),
                    earlier_returned(field_from(record, "earlier_fulfilments") or ()),
                )
            day += timedelta(days=1)

    def campaign_created_in(self, period: Period) -> Iterator[CampaignFacts]:
        """The same day-by-day queries, read as the campaign dashboard needs them."""
        for day in period.days():
            for record in self._orders.created_day_index.query(day.start.isoformat()):
                earlier = field_from(record, "earlier_fulfilments") or ()
                dispatches = [at for _, at in earlier_dispatches(earlier)] + [_time(record.dispatched_at)]
                yield CampaignFacts(
                    created_at=from_iso(record.created_at),
                    free=(record.eligibility_reason or "") != EligibilityReason.STANDARD_PRICE.value,
                    state=field_from(record, "state"),
                    payment=field_from(record, "payment"),
                    refunded_pence=int(record.refunded_pence or 0),
                    replacements=len(earlier),
                    first_dispatched_at=next((at for at in dispatches if at is not None), None),
                )

    def facts(self, references: Iterable[str]) -> dict[str, OrderFacts]:
        """BatchGetItem, 100 keys a request, fetching only the finance fields."""
        wanted = sorted(set(references))
        if not wanted:
            return {}
        records = self._orders.batch_get(wanted, attributes_to_get=["order_ref", "created_at", *FINANCE_FIELDS])
        return {record.order_ref: _facts(record) for record in records}


def _time(raw: str | None):
    return from_iso(raw) if raw else None


def _facts(record) -> OrderFacts:
    return OrderFacts(
        reference=record.order_ref,
        created_at=from_iso(record.created_at),
        state=field_from(record, "state"),
        payment=field_from(record, "payment"),
        fulfilment=field_from(record, "fulfilment"),
        amount_pence=int(record.amount_pence),
        currency=record.currency,
        payment_intent_id=record.payment_intent_id,
        refunded_pence=int(record.refunded_pence or 0),
        dispute_status=record.dispute_status,
        released_at=_time(getattr(record, "released_at", None)),
        cancelled_by_holder=bool(getattr(record, "cancelled_by_holder", False)),
        fulfilment_attempt=field_from(record, "fulfilment_attempt") or 1,
        earlier_fulfilments=tuple(field_from(record, "earlier_fulfilments") or ()),
    )
