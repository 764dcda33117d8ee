"""The kit maker's statement as files (CSV and XLSX, the same figures) and its monthly export,
figures worked out by hand."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.kit_statement import KitFacts, statement
from chalicelib.domain.orders import FulfilmentState
from chalicelib.domain.reconciliation import Period
from chalicelib.reports import write_statement
from chalicelib.services import finance
from tests.builders import fake_dependencies

OCT_31_LATE = datetime(2026, 10, 31, 23, 59, 59, tzinfo=timezone.utc)
NOV_1_EARLY = datetime(2026, 11, 1, 0, 0, 1, tzinfo=timezone.utc)
RELEASED = datetime(2026, 10, 20, tzinfo=timezone.utc)


def kits() -> list[KitFacts]:
    """Two kits either side of midnight on 31 October, a free one and a cancellation in November."""
    return [
        KitFacts("F-001", "standard_price", FulfilmentState.DISPATCHED, RELEASED, OCT_31_LATE, None),
        KitFacts("F-002", "standard_price", FulfilmentState.DISPATCHED, RELEASED, NOV_1_EARLY, None),
        KitFacts(
            "F-003", "free_area", FulfilmentState.DISPATCHED, RELEASED, datetime(2026, 11, 2, tzinfo=timezone.utc), None
        ),
        KitFacts(
            "F-004",
            "register_flag",
            FulfilmentState.CANCELLED,
            RELEASED,
            None,
            datetime(2026, 11, 3, tzinfo=timezone.utc),
        ),
    ]


NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1))
OCTOBER = Period(date(2026, 10, 1), date(2026, 11, 1))


def test_a_kit_counts_in_the_month_it_was_dispatched_across_the_boundary():
    october, november = statement(kits(), OCTOBER, 895), statement(kits(), NOVEMBER, 895)
    assert [line.fulfilment_id for line in october.lines] == ["F-001"] and october.total_pence == 895
    assert [line.fulfilment_id for line in november.lines] == ["F-002", "F-003", "F-004"]
    assert november.total_pence == 2685  # 3 x 895


def csv_of(result) -> tuple[list[list[str]], dict[str, tuple[str, ...]]]:
    buffer = io.BytesIO()
    write_statement("csv", buffer, result)
    rows = list(csv.reader(io.StringIO(buffer.getvalue().decode("utf-8-sig"), newline="")))
    blank = rows.index([])
    return rows[1:blank], {row[0]: tuple(row[1:]) for row in rows[blank + 2 :]}


def test_the_xlsx_has_the_csvs_figures_with_excel_dates_and_numbers():
    from openpyxl import load_workbook

    result = statement(kits(), NOVEMBER, 895)
    lines, totals = csv_of(result)
    assert lines[0] == ["F-002", "paid", "2026-11-01T00:00:01Z", "895", "8.95"]
    assert totals["paid"] == ("1", "895", "8.95") and totals["total"] == ("3", "2685", "26.85")
    buffer = io.BytesIO()
    write_statement("xlsx", buffer, result)
    book = load_workbook(io.BytesIO(buffer.getvalue()))
    sheet = [[cell.value for cell in row] for row in book["Kits"].iter_rows(min_row=2)]
    assert sheet[0] == ["F-002", "paid", datetime(2026, 11, 1, 0, 0, 1), 895, 8.95]
    assert book["Kits"]["C2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert [row[0] for row in sheet] == [line[0] for line in lines]
    xlsx_totals = {row[0].value: row[1:] for row in book["Totals"].iter_rows(min_row=2)}
    assert [c.value for c in xlsx_totals["total"]] == [3, 2685, 26.85]
    for kind, (count, pence, pounds) in totals.items():
        assert [c.value for c in xlsx_totals[kind]] == [int(count), int(pence), float(Decimal(pounds))]


def test_an_unknown_format_is_refused():
    with pytest.raises(InvalidInput):
        finance.statement_to(io.BytesIO(), "pdf", NOVEMBER, fake_dependencies())


def test_the_monthly_export_run_twice_leaves_one_object_per_format():
    deps = fake_dependencies()
    deps.clock.set(datetime(2026, 12, 1, 6, 15, tzinfo=timezone.utc))
    first = finance.export_previous_month_statement(deps)
    assert first == [
        "kit-maker-statement/2026/kit-maker-statement-2026-11.csv",
        "kit-maker-statement/2026/kit-maker-statement-2026-11.xlsx",
    ]
    bodies = {key: deps.exports.objects[key] for key in first}
    assert finance.export_previous_month_statement(deps) == []
    assert {key: deps.exports.objects[key] for key in deps.exports.objects} == bodies


def test_january_exports_last_december():
    assert finance.previous_month(date(2027, 1, 1)) == Period(date(2026, 12, 1), date(2027, 1, 1))
    assert finance.previous_month(date(2026, 3, 15)) == Period(date(2026, 2, 1), date(2026, 3, 1))


def test_a_cancelled_order_reads_as_what_it_is_in_the_reconciliation():
    """Before: a cancelled, refunded order's row said only `cancelled`; now it says who, when, and the money."""
    from chalicelib.domain.orders import OrderState, PaymentState
    from chalicelib.domain.reconciliation import OrderFacts, Reconciliation

    def facts(**changes) -> OrderFacts:
        base = dict(
            reference="TK-1",
            created_at=RELEASED,
            state=OrderState.CANCELLED,
            payment=PaymentState.REFUNDED,
            fulfilment=FulfilmentState.CANCELLED,
            amount_pence=895,
            currency="gbp",
            payment_intent_id=None,
            refunded_pence=895,
            dispute_status=None,
        )
        return OrderFacts(**(base | changes))

    run = Reconciliation(NOVEMBER)
    holder, _ = run.order_facts(facts(cancelled_by_holder=True))
    kit_maker, found = run.order_facts(facts(released_at=RELEASED, payment=PaymentState.NOT_REQUIRED, amount_pence=0))
    assert holder is not None and kit_maker is not None and found == []
    assert holder["cancellation"] == "cancelled by the holder, before release, refunded in full"
    assert holder["discrepancies"] == "" and kit_maker["discrepancies"] == ""
    assert kit_maker["cancellation"] == "cancelled by tracekit, after release to the kit maker, free"
