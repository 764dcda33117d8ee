"""Stripe's ledger for finance: balance transactions and payouts, through the SDK's
auto-pagination so a long period streams rather than loads."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterator

import stripe

from ..domain.reconciliation import LedgerEntry, Payout, Period
from .stripe_payments import _reachable

if TYPE_CHECKING:
    from stripe.params import PayoutListParams

# Payouts arriving this long after the period can still contain its transactions.
PAYOUT_HORIZON = timedelta(days=30)
_EXPAND = ["data.source", "data.source.payment_intent"]


class StripeLedger:
    def __init__(self, client: stripe.StripeClient):
        self._client = client

    def entries(self, period: Period) -> Iterator[LedgerEntry]:
        with _reachable():
            listing = self._client.v1.balance_transactions.list(
                params={
                    "created": {"gte": _unix(period.start), "lt": _unix(period.end)},
                    "limit": 100,
                    "expand": _EXPAND,
                }
            )
            for transaction in listing.auto_paging_iter():
                yield _entry(transaction.to_dict())

    def payouts(self, period: Period) -> Iterator[tuple[Payout, list[str]]]:
        """Payouts that may hold the period's transactions, each with its transaction ids."""
        params: PayoutListParams = {
            "created": {"gte": _unix(period.start), "lt": _unix(period.end + PAYOUT_HORIZON)},
            "limit": 100,
        }
        with _reachable():
            for payout in self._client.v1.payouts.list(params=params).auto_paging_iter():
                contained = self._client.v1.balance_transactions.list(params={"payout": payout.id, "limit": 100})
                ids = [t.id for t in contained.auto_paging_iter() if t.type != "payout"]
                yield Payout(payout.id, payout.amount, payout.currency, _day(payout.arrival_date)), ids

    def has_charge(self, payment_intent_id: str | None) -> bool:
        """Whether Stripe holds a successful charge for this payment (outside the period too)."""
        if not payment_intent_id:
            return False
        with _reachable():
            try:
                intent = self._client.v1.payment_intents.retrieve(payment_intent_id)
            except stripe.InvalidRequestError:
                return False
        return bool(intent.latest_charge) and intent.status == "succeeded"


def _entry(item: dict) -> LedgerEntry:
    source = item.get("source")
    source = source if isinstance(source, dict) else {"id": source}
    intent = source.get("payment_intent")
    intent = intent if isinstance(intent, dict) else {"id": intent}
    charge = source.get("id") if source.get("object") == "charge" else source.get("charge")
    return LedgerEntry(
        id=item["id"],
        type=item["type"],
        reporting_category=item.get("reporting_category") or item["type"],
        amount=item["amount"],
        fee=item.get("fee") or 0,
        net=item["net"],
        currency=item["currency"],
        created=datetime.fromtimestamp(item["created"], timezone.utc),
        source_id=source.get("id"),
        charge_id=charge if isinstance(charge, str) else None,
        payment_intent_id=intent.get("id"),
        order_reference=(intent.get("metadata") or {}).get("order_reference"),
        charge_amount_refunded=source.get("amount_refunded") if source.get("object") == "charge" else None,
    )


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _day(unix: int) -> date:
    return datetime.fromtimestamp(unix, timezone.utc).date()
