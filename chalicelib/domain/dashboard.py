"""The campaign dashboard's figures, worked out from facts that name nobody (the creation index's
projection, as finance reads it) and the fulfilment health check's two counts.

An order counts once it is an order the holder meant: confirmed (paid, or free), or cancelled or
refunded after it was; an order still waiting for payment, or whose checkout lapsed, does not.
Uptake is those orders against the letters the campaign sent (LETTERS_SENT). Dispatch time runs
from the order's creation to its first dispatch (a replacement's later dispatch is not the
holder's wait for the first kit). tracekit holds no area in clear (the delivery postcode is
sealed), so the dashboard has no breakdown by area to suppress.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from .orders import OrderState, PaymentState
from .reconciliation import Period

NOT_AN_ORDER = frozenset({PaymentState.AWAITING, PaymentState.FAILED, PaymentState.NOT_TAKEN})
# Dispatch waits, in whole days since the order: (upper bound in days or None, label).
DISPATCH_BANDS: tuple[tuple[int | None, str], ...] = (
    (1, "Within 1 day"),
    (2, "1 to 2 days"),
    (3, "2 to 3 days"),
    (5, "3 to 5 days"),
    (None, "More than 5 days"),
)


@dataclass(frozen=True)
class CampaignFacts:
    """One order as the dashboard needs it: kind, states, money back, times; no name or address."""

    created_at: datetime
    free: bool
    state: OrderState
    payment: PaymentState
    refunded_pence: int
    replacements: int  # fulfilments after the first
    first_dispatched_at: datetime | None

    @property
    def counts(self) -> bool:
        return self.state in (OrderState.CONFIRMED, OrderState.CANCELLED) and self.payment not in NOT_AN_ORDER


@dataclass(frozen=True)
class DayCount:
    day: date
    paid: int
    free: int


@dataclass(frozen=True)
class CampaignFigures:
    period: Period
    letters_sent: int
    days: tuple[DayCount, ...]
    paid: int
    free: int
    dispatch_bands: tuple[tuple[str, int], ...]
    median_dispatch_hours: float | None  # None while nothing in the period has been dispatched
    refunds: int  # orders with any money refunded
    refunded_pence: int
    replacements: int
    stuck: int  # fulfilments released and not dispatched in time, now (whatever the period)
    dead_letters: int  # messages on the fulfilment dead-letter queue, now

    @property
    def orders(self) -> int:
        return self.paid + self.free

    @property
    def uptake_percent(self) -> str:
        """Orders per letter sent, as a percentage to one decimal place ('0.0' with no letters)."""
        return f"{100 * self.orders / self.letters_sent:.1f}" if self.letters_sent else "0.0"


def campaign_figures(
    facts: list[CampaignFacts], period: Period, letters_sent: int, stuck: int, dead_letters: int
) -> CampaignFigures:
    orders = [fact for fact in facts if fact.counts and period.start <= fact.created_at.date() < period.end]
    paid_on = Counter(fact.created_at.date() for fact in orders if not fact.free)
    free_on = Counter(fact.created_at.date() for fact in orders if fact.free)
    days = [DayCount(day.start, paid_on[day.start], free_on[day.start]) for day in period.days()]
    waits = [fact.first_dispatched_at - fact.created_at for fact in orders if fact.first_dispatched_at]
    refunded = [fact.refunded_pence for fact in orders if fact.refunded_pence > 0]
    free_total = sum(fact.free for fact in orders)
    return CampaignFigures(
        period=period,
        letters_sent=letters_sent,
        days=tuple(days),
        paid=len(orders) - free_total,
        free=free_total,
        dispatch_bands=_bands(waits),
        median_dispatch_hours=round(median(w.total_seconds() for w in waits) / 3600, 1) if waits else None,
        refunds=len(refunded),
        refunded_pence=sum(refunded),
        replacements=sum(fact.replacements for fact in orders),
        stuck=stuck,
        dead_letters=dead_letters,
    )


def _bands(waits: list[timedelta]) -> tuple[tuple[str, int], ...]:
    counted = {label: 0 for _, label in DISPATCH_BANDS}
    for wait in waits:
        for upper, label in DISPATCH_BANDS:
            if upper is None or wait <= timedelta(days=upper):
                counted[label] += 1
                break
    return tuple(counted.items())
