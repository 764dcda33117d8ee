"""The kit maker's statement: what tracekit owes the kit maker for a period, kit by kit, so finance
can check the invoice line by line. Pure, like the reconciliation; nothing personal enters it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Iterable

from .eligibility import EligibilityReason
from .orders import EarlierFulfilment, FulfilmentState
from .reconciliation import Period


class KitKind(str, Enum):
    """An enum so later kinds (replacement, returned) slot in beside these."""

    PAID = "paid"
    FREE_REGISTER_FLAG = "free_register_flag"
    FREE_AREA = "free_area"
    CANCELLED_AFTER_RELEASE = "cancelled_after_release"
    REPLACEMENT = "replacement"  # a kit sent again for one the holder reported had not arrived
    RETURNED = "returned"  # posted, and came back to the kit maker undelivered (by its dispatch time)


_DISPATCHED_KIND = {
    EligibilityReason.STANDARD_PRICE.value: KitKind.PAID,
    EligibilityReason.REGISTER_FLAG.value: KitKind.FREE_REGISTER_FLAG,
    EligibilityReason.FREE_AREA.value: KitKind.FREE_AREA,
}


@dataclass(frozen=True)
class KitFacts:
    """An order's fulfilment as the statement needs it: ids, reason and times, no name or address."""

    fulfilment_id: str
    eligibility_reason: str
    fulfilment: FulfilmentState
    released_at: datetime | None
    dispatched_at: datetime | None
    cancelled_at: datetime | None
    # The order's earlier fulfilments that were dispatched (superseded by a replacement), oldest
    # first: (fulfilment id, dispatched at). The first counts in the order's own kind, in its own
    # period; every later dispatched fulfilment of the order is a replacement.
    earlier_dispatches: tuple[tuple[str, datetime], ...] = ()
    # Those of the earlier dispatched fulfilments that came back to the kit maker undelivered.
    earlier_returned: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StatementLine:
    fulfilment_id: str
    kind: KitKind
    at: datetime  # dispatched at, or cancelled at for a kit cancelled after release
    unit_price_pence: int


@dataclass(frozen=True)
class Statement:
    lines: tuple[StatementLine, ...]
    counts: dict[KitKind, int]
    amounts_pence: dict[KitKind, int]
    total_pence: int


def _in(period: Period, moment: datetime | None) -> bool:
    return moment is not None and period.start <= moment.date() < period.end


def line_for(kit: KitFacts, period: Period, unit_price_pence: int) -> StatementLine | None:
    """A dispatched kit counts by its dispatch time (one that came back as returned); a cancelled
    one only if it had been released."""
    if kit.fulfilment is FulfilmentState.RETURNED and kit.dispatched_at is not None and _in(period, kit.dispatched_at):
        return StatementLine(kit.fulfilment_id, KitKind.RETURNED, kit.dispatched_at, unit_price_pence)
    if kit.fulfilment is FulfilmentState.DISPATCHED and _in(period, kit.dispatched_at):
        kind = KitKind.REPLACEMENT if kit.earlier_dispatches else _DISPATCHED_KIND.get(kit.eligibility_reason)
        if kind is not None and kit.dispatched_at is not None:
            return StatementLine(kit.fulfilment_id, kind, kit.dispatched_at, unit_price_pence)
    cancelled = kit.cancelled_at
    if kit.fulfilment is FulfilmentState.CANCELLED and kit.released_at is not None and cancelled is not None:
        if _in(period, cancelled):
            return StatementLine(kit.fulfilment_id, KitKind.CANCELLED_AFTER_RELEASE, cancelled, unit_price_pence)
    return None


def earlier_lines_for(kit: KitFacts, period: Period, unit_price_pence: int) -> list[StatementLine]:
    """The order's superseded fulfilments that were dispatched in the period: the first in the
    order's own kind, any later one a replacement, and one that came back as returned."""
    lines = []
    for n, (fulfilment_id, dispatched_at) in enumerate(kit.earlier_dispatches):
        kind = KitKind.REPLACEMENT if n else _DISPATCHED_KIND.get(kit.eligibility_reason)
        if fulfilment_id in kit.earlier_returned:
            kind = KitKind.RETURNED
        if kind is not None and _in(period, dispatched_at):
            lines.append(StatementLine(fulfilment_id, kind, dispatched_at, unit_price_pence))
    return lines


def _lines(kits: Iterable[KitFacts], period: Period, unit_price_pence: int) -> Iterable[StatementLine]:
    for kit in kits:
        yield from earlier_lines_for(kit, period, unit_price_pence)
        line = line_for(kit, period, unit_price_pence)
        if line is not None:
            yield line


def statement(kits: Iterable[KitFacts], period: Period, unit_price_pence: int) -> Statement:
    """Every kit of the period at the negotiated unit price, oldest first, with counts by kind and a total."""
    lines = sorted(
        _lines(kits, period, unit_price_pence),
        key=lambda line: (line.at, line.fulfilment_id),
    )
    counts = Counter(line.kind for line in lines)
    amounts = {kind: counts[kind] * unit_price_pence for kind in KitKind}
    return Statement(tuple(lines), {kind: counts[kind] for kind in KitKind}, amounts, sum(amounts.values()))


def earlier_dispatches(earlier: Iterable[EarlierFulfilment]) -> tuple[tuple[str, datetime], ...]:
    """KitFacts.earlier_dispatches from an order's earlier fulfilments."""
    return tuple((e.fulfilment_id, e.dispatch.dispatched_at) for e in earlier if e.dispatch is not None)


def earlier_returned(earlier: Iterable[EarlierFulfilment]) -> frozenset[str]:
    """KitFacts.earlier_returned from an order's earlier fulfilments."""
    return frozenset(e.fulfilment_id for e in earlier if e.state is FulfilmentState.RETURNED)
