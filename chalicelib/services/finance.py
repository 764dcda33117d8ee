"""Finance's reconciliation: one code path for the CLI, the API and the daily export."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import islice
from typing import BinaryIO, Callable, Iterable, Iterator, TypeVar, cast

from ..domain.errors import InvalidInput
from ..domain.kit_statement import Statement, statement
from ..domain.reconciliation import LedgerEntry, OrderFacts, Period, Reconciliation
from ..ports import Report
from .dependencies import Dependencies

log = logging.getLogger("tracekit")
CHUNK = 100  # balance transactions joined to their orders per BatchGetItem
FORMATS = ("csv", "xlsx")
STATEMENT_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
T = TypeVar("T")
EARLIEST = date(2017, 1, 1)  # the campaign's first year: nothing, in tracekit or Stripe, is older


@dataclass(frozen=True)
class ExportResult:
    rows: int
    findings: int


def parse_period(start: str | None, end: str | None) -> Period:
    errors: dict[str, str] = {}
    first, last = _date(start, "from", errors), _date(end, "to", errors)
    if first is None or last is None:
        raise InvalidInput(errors)
    if first < EARLIEST:
        errors["from"] = f"from must be {EARLIEST.isoformat()} or later"
    if not errors and last <= first:
        errors["to"] = "to must be after from (the end is exclusive)"
    if not errors and (last - first).days > 366:
        errors["to"] = "a period is at most 366 days"
    if errors or first is None or last is None:
        raise InvalidInput(errors)
    return Period(first, last)


def _date(raw: str | None, name: str, errors: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        errors[name] = f"{name} must be a date like 2026-11-01"
        return None


def reconcile(
    period: Period, report: Report, deps: Dependencies, on_row: Callable[[], None] = lambda: None
) -> ExportResult:
    """Day by day (so memory is bounded by one day's business, however long the period): the
    day's orders by a query on the creation-day index, the day's balance transactions through the
    SDK's auto-pagination, joined in memory; a transaction whose order was created on another day
    (a refund, a dispute) has its order fetched by BatchGetItem. Ends with the discrepancy
    sections and the summary."""
    run = Reconciliation(period)
    payout_of = _payouts(period, run, deps)
    for day in period.days():
        run.start_day()
        orders = {order.reference: order for order in deps.finance_orders.created_in(day)}
        for chunk in _chunks(deps.ledger.entries(day), CHUNK):
            named = {e.order_reference for e in chunk if e.order_reference}
            elsewhere = deps.finance_orders.facts(named - set(orders))
            for entry in chunk:
                reference = entry.order_reference or ""
                order = orders.get(reference) or elsewhere.get(reference)
                report.row(run.entry_row(_with_payout(entry, payout_of), order))
                on_row()
        for order in orders.values():
            _order_row(run, order, report, deps, on_row)
    report.finish(run.findings, run.summary())
    return ExportResult(report.rows, len(run.findings))


def _order_row(
    run: Reconciliation, order: OrderFacts, report: Report, deps: Dependencies, on_row: Callable[[], None]
) -> None:
    row, _ = run.order_facts(order)
    if row is not None:
        report.row(row)
        on_row()
    if run.unmatched_paid_orders(order) and not deps.ledger.has_charge(order.payment_intent_id):
        run.note_missing_charge(order)


def _payouts(period: Period, run: Reconciliation, deps: Dependencies) -> dict[str, tuple[str, date]]:
    """Which payout paid out each transaction (Stripe's transactions do not say; payouts list them)."""
    payout_of: dict[str, tuple[str, date]] = {}
    for payout, transaction_ids in deps.ledger.payouts(period):
        run.payouts[payout.id] = payout
        payout_of.update({tid: (payout.id, payout.arrival_date) for tid in transaction_ids})
    return payout_of


def _with_payout(entry: LedgerEntry, payout_of: dict[str, tuple[str, date]]) -> LedgerEntry:
    paid = payout_of.get(entry.id)
    return replace(entry, payout_id=paid[0], payout_date=paid[1]) if paid else entry


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def export_to(
    stream: BinaryIO, fmt: str, period: Period, deps: Dependencies, on_row: Callable[[], None] = lambda: None
) -> ExportResult:
    if fmt not in FORMATS:
        raise InvalidInput({"format": "format must be csv or xlsx"})
    return reconcile(period, deps.reports(fmt, stream), deps, on_row)


def daily_export_key(day: date, fmt: str = "csv") -> str:
    return f"reconciliation/{day:%Y/%m}/reconciliation-{day.isoformat()}.{fmt}"


def export_previous_day(deps: Dependencies) -> bool:
    """Scheduled: yesterday (UTC) to the exports bucket under a dated key. A second run for the
    same day finds the object there and writes nothing, so the bucket keeps one object per day."""
    day = deps.clock().date() - timedelta(days=1)
    key = daily_export_key(day)
    if deps.exports.exists(key):
        return False
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        result = export_to(cast(BinaryIO, spool), "csv", Period(day, day + timedelta(days=1)), deps)
        spool.seek(0)
        written = deps.exports.put_once(key, spool.read(), "text/csv; charset=utf-8")
    log.info(
        "daily reconciliation for %s: %d rows, %d discrepancies, %s",
        day,
        result.rows,
        result.findings,
        "written" if written else "already there",
    )
    return written


# A kit is dispatched days or weeks after its order: the statement reads orders created this long
# before the period (docs/finance.md).
STATEMENT_LOOKBACK = timedelta(days=120)


def kit_maker_statement(period: Period, deps: Dependencies) -> Statement:
    """What the kit maker is owed for the period, kit by kit, at the negotiated unit price."""
    created = Period(period.start - STATEMENT_LOOKBACK, period.end)
    kits = deps.finance_orders.kits_created_in(created)
    return statement(kits, period, deps.settings.kit_maker_unit_price_pence)


def statement_to(stream: BinaryIO, fmt: str, period: Period, deps: Dependencies) -> Statement:
    """The kit maker's statement for the period, as a file in the format asked for (csv or xlsx)."""
    if fmt not in FORMATS:
        raise InvalidInput({"format": "format must be json, csv or xlsx"})
    result = kit_maker_statement(period, deps)
    deps.statement_files(fmt, stream, result)
    return result


def previous_month(day: date) -> Period:
    """The calendar month before the one `day` is in."""
    first = day.replace(day=1)
    return Period((first - timedelta(days=1)).replace(day=1), first)


def monthly_statement_key(month: Period, fmt: str) -> str:
    return f"kit-maker-statement/{month.start:%Y}/kit-maker-statement-{month.start:%Y-%m}.{fmt}"


def export_previous_month_statement(deps: Dependencies) -> list[str]:
    """Scheduled with the daily export: last calendar month's statement, CSV and XLSX, to the
    exports bucket. Written on the 1st; a later day's run writes whichever of the two is missing
    (the 1st's run failed), and one that finds both there writes nothing: one object per month
    and format. Returns the keys it wrote."""
    month = previous_month(deps.clock().date())
    missing = [fmt for fmt in FORMATS if not deps.exports.exists(monthly_statement_key(month, fmt))]
    if not missing:
        return []
    result = kit_maker_statement(month, deps)
    written = []
    for fmt in missing:
        key = monthly_statement_key(month, fmt)
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            deps.statement_files(fmt, cast(BinaryIO, spool), result)
            spool.seek(0)
            if deps.exports.put_once(key, spool.read(), STATEMENT_MEDIA_TYPES[fmt]):
                written.append(key)
    log.info("kit maker's statement for %s: %d kits, %s", month.start.strftime("%Y-%m"), len(result.lines), written)
    return written
