"""Finance's reconciliation on fakes: a period of every kind of order, totals checked against
figures worked out by hand, and each discrepancy produced on purpose."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from chalicelib.domain.changes import Source
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money, free
from chalicelib.domain.lifecycle import accept_payment, expire_checkout, place_order, reconcile_money, release
from chalicelib.domain.payments import MoneyView
from chalicelib.domain.reconciliation import LedgerEntry, Payout, Period
from chalicelib.reports import neutralise
from chalicelib.services import finance
from tests.builders import NOW, delivery_form, fake_dependencies

AT = NOW  # noon today, UTC


def released(order, at):
    return release(order, at).order


PERIOD = Period(AT.date(), AT.date() + timedelta(days=1))
IN_TWO_DAYS = (AT + timedelta(days=2)).date().isoformat()  # when a charge made at AT is paid out
STRIPE = Source("stripe", "evt")


STANDARD = Money(895)


def order(reference: str, price: Money = STANDARD):
    reason = EligibilityReason.STANDARD_PRICE if price.pence else EligibilityReason.REGISTER_FLAG
    return place_order(
        reference, f"cert-{reference}", Eligibility(price, reason), parse_delivery_details(delivery_form()), AT
    ).order


def paid(reference: str, refunded: int = 0, dispute: str | None = None, release: bool = True):
    placed = accept_payment(order(reference), Money(895), f"pi_{reference}", STRIPE, AT).order
    placed = released(placed, AT) if release else placed
    if refunded or dispute:
        placed = reconcile_money(
            placed, MoneyView(reference, f"pi_{reference}", Money(895), refunded, dispute), STRIPE, AT
        ).order
    return placed


def entry(reference: str | None, kind: str, amount: int, fee: int = 0, category: str | None = None, **changes):
    base = LedgerEntry(
        f"txn_{kind}_{reference}_{amount}",
        kind,
        category or kind,
        amount,
        fee,
        amount - fee,
        "gbp",
        AT + timedelta(minutes=1),
        f"src_{reference}",
        f"ch_{reference}",
        f"pi_{reference}",
        reference,
        0 if kind == "charge" else None,
    )
    return replace(base, **changes)


def charge(reference: str, refunded: int = 0, **changes):
    return replace(entry(reference, "charge", 895, 33, charge_amount_refunded=refunded), **changes)


def run(deps) -> dict[str, list[list[str]]]:
    """The CSV export, read back into its labelled sections."""
    buffer = io.BytesIO()
    finance.export_to(buffer, "csv", PERIOD, deps)
    text = buffer.getvalue().decode("utf-8")
    assert text.startswith("\ufeff")
    sections, current = {}, None
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        if row and row[0].startswith("# "):
            current = row[0][2:]
            sections[current] = []
        elif row:
            sections[current].append(row)
    return sections


def summary(sections) -> dict[str, str]:
    return {label: value for label, value in sections["Summary"][1:]}


def a_period_of_every_kind(deps):
    orders = {
        "TK-AAAAA-00001": paid("TK-AAAAA-00001"),
        "TK-AAAAA-00002": released(order("TK-AAAAA-00002", free()), AT),
        "TK-AAAAA-00003": paid("TK-AAAAA-00003", refunded=895),
        "TK-AAAAA-00004": paid("TK-AAAAA-00004", refunded=300),
        "TK-AAAAA-00005": paid("TK-AAAAA-00005", dispute="needs_response"),
        "TK-AAAAA-00006": expire_checkout(order("TK-AAAAA-00006"), None, STRIPE, AT).order,
    }
    deps.orders.orders.update(orders)
    deps.ledger.entries_list += [
        charge("TK-AAAAA-00001"),
        charge("TK-AAAAA-00003", refunded=895),
        entry("TK-AAAAA-00003", "refund", -895),
        charge("TK-AAAAA-00004", refunded=300),
        entry("TK-AAAAA-00004", "refund", -300),
        charge("TK-AAAAA-00005"),
        entry("TK-AAAAA-00005", "adjustment", -895, 2000, "dispute"),
    ]
    payout = Payout("po_1", 862 + 862 - 895, "gbp", date.fromisoformat(IN_TWO_DAYS))
    deps.ledger.payout_list.append(
        (payout, ["txn_charge_TK-AAAAA-00001_895", "txn_charge_TK-AAAAA-00003_895", "txn_refund_TK-AAAAA-00003_-895"])
    )
    return orders


def test_a_period_of_every_kind_of_order_adds_up_to_hand_computed_figures():
    deps = fake_dependencies()
    a_period_of_every_kind(deps)
    sections = run(deps)
    totals = summary(sections)
    # 4 charges of 895: gross 3580; fees 4 x 33 + the £20 dispute fee = 2132
    assert (totals["charges"], totals["gross_pence"], totals["fees_pence"]) == ("4", "3580", "2132")
    # net: 4 x 862 - 895 (refund) - 300 (refund) - 2895 (dispute, with its fee) = -642
    assert (totals["net_pence"], totals["refunds_pence"], totals["disputes_pence"]) == ("-642", "1195", "895")
    assert totals["free_kits"] == "1"
    assert (totals["payment paid"], totals["payment refunded"], totals["payment partially_refunded"]) == ("1", "1", "1")
    assert (totals["payment disputed"], totals["order expired"], totals["fulfilment cancelled"]) == ("1", "1", "1")
    # the expired order took no money: it is not counted as still awaiting payment
    assert totals["payment not_taken"] == "1" and "payment awaiting" not in totals
    assert totals["payout po_1"] == f"829 gbp arriving {IN_TWO_DAYS}"
    rows = sections["Reconciliation rows"]
    data = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(data) == 7 + 2  # seven transactions, plus the free and the expired order on rows of their own
    first = next(r for r in data if r["balance_transaction_id"] == "txn_charge_TK-AAAAA-00001_895")
    assert (first["amount_pence"], first["amount_pounds"], first["fee_pence"], first["net_pounds"]) == (
        "895",
        "8.95",
        "33",
        "8.62",
    )
    assert (first["payout_id"], first["payout_date"], first["order_date"]) == (
        "po_1",
        IN_TWO_DAYS,
        AT.date().isoformat(),
    )
    assert {"Ada", "Test Street", "ada@example.com", "SW1A"}.isdisjoint(" ".join(" ".join(r) for r in rows).split())
    counts = {label: value for label, value in summary(sections).items() if label.startswith("discrepancies")}
    assert counts["discrepancies: Disputes"] == "2" and sum(int(v) for v in counts.values()) == 2


def test_each_kind_of_discrepancy_is_found_and_counted():
    deps = fake_dependencies()
    deps.orders.orders.update(
        {
            "TK-BBBBB-00002": paid("TK-BBBBB-00002"),  # paid, but Stripe has no charge at all
            "TK-BBBBB-00003": paid("TK-BBBBB-00003"),  # charged a different amount
            "TK-BBBBB-00004": paid("TK-BBBBB-00004"),  # refunded in Stripe only
            "TK-BBBBB-00005": paid("TK-BBBBB-00005", dispute="under_review"),
            "TK-BBBBB-00006": released(order("TK-BBBBB-00006", free()), AT),  # free, yet charged
            "TK-BBBBB-00007": paid("TK-BBBBB-00007", release=False),  # paid, never released
        }
    )
    deps.ledger.entries_list += [
        charge("TK-ZZZZZ-00001"),  # no such order
        charge("TK-BBBBB-00003", amount=500, fee=28, net=472),
        charge("TK-BBBBB-00004", refunded=200),
        charge("TK-BBBBB-00005"),
        charge("TK-BBBBB-00006"),
        charge("TK-BBBBB-00007"),
    ]
    sections = run(deps)
    found = {label: value for label, value in summary(sections).items() if label.startswith("discrepancies")}
    assert found == {
        "discrepancies: Money in Stripe with no confirmed order": "1",
        "discrepancies: Confirmed paid order with no Stripe charge": "1",
        "discrepancies: Amount or currency differs from the order": "1",
        "discrepancies: Refunded in Stripe and in tracekit differ": "1",
        "discrepancies: Disputes": "1",
        "discrepancies: Free orders with money attached": "1",
        "discrepancies: Paid orders not yet released to the manufacturer": "1",
    }
    section = sections["Discrepancies: Confirmed paid order with no Stripe charge (1)"]
    assert section[1][0] == "TK-BBBBB-00002"


def test_a_paid_order_charged_outside_the_period_is_not_a_discrepancy():
    deps = fake_dependencies()
    deps.orders.orders["TK-CCCCC-00001"] = paid("TK-CCCCC-00001")
    deps.ledger.charged_intents.add("pi_TK-CCCCC-00001")
    found = summary(run(deps))
    assert found["discrepancies: Confirmed paid order with no Stripe charge"] == "0"


def test_cells_that_excel_would_run_as_formulas_are_neutralised():
    deps = fake_dependencies()
    deps.ledger.entries_list.append(charge('=HYPERLINK("http://evil")', source_id="@SUM(A1)"))
    rows = run(deps)["Reconciliation rows"]
    data = dict(zip(rows[0], rows[1], strict=True))
    assert data["order_reference"] == '\'=HYPERLINK("http://evil")'
    for text in ("=1+1", "+1", "-1", "@x", "\tx"):
        assert neutralise(text) == "'" + text
    assert neutralise(-300) == -300 and neutralise("TK-AAAAA-00001") == "TK-AAAAA-00001"


def test_the_xlsx_has_a_sheet_per_section():
    from openpyxl import load_workbook

    deps = fake_dependencies()
    a_period_of_every_kind(deps)
    buffer = io.BytesIO()
    finance.export_to(buffer, "xlsx", PERIOD, deps)
    book = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    assert book.sheetnames[0] == "Rows" and book.sheetnames[-1] == "Summary" and "Dispute" in book.sheetnames
    assert len(list(book["Rows"].iter_rows())) == 1 + 9


def test_the_daily_export_runs_twice_and_leaves_one_object():
    deps = fake_dependencies()
    a_period_of_every_kind(deps)
    deps.clock.set(AT + timedelta(hours=18, minutes=15))  # 06:15 the next morning
    assert finance.export_previous_day(deps) is True
    assert finance.export_previous_day(deps) is False
    assert list(deps.exports.objects) == [f"reconciliation/{AT:%Y/%m}/reconciliation-{AT.date()}.csv"]


@pytest.mark.parametrize(
    "start, end",
    [
        ("2026-11-30", "2026-11-29"),
        ("yesterday", "2026-11-29"),
        ("2025-01-01", "2026-11-29"),
        ("2026-11-29", "2026-11-29"),
        ("0004-08-01", "0005-03-01"),  # found by schemathesis: Stripe refuses times before 1970
        ("2016-12-31", "2017-01-02"),
    ],
)
def test_a_bad_period_is_refused_with_a_clear_error(start, end):
    with pytest.raises(InvalidInput):
        finance.parse_period(start, end)


def test_the_xlsx_dates_are_excel_dates_not_text():
    from openpyxl import load_workbook

    deps = fake_dependencies()
    a_period_of_every_kind(deps)
    buffer = io.BytesIO()
    finance.export_to(buffer, "xlsx", PERIOD, deps)
    book = load_workbook(io.BytesIO(buffer.getvalue()))
    sheet = book["Rows"]
    header = [cell.value for cell in sheet[1]]
    dated = [row for row in sheet.iter_rows(min_row=2) if row[header.index("transaction_date")].value]
    cell = dated[0][header.index("transaction_date")]
    assert isinstance(cell.value, datetime) and cell.value == datetime(AT.year, AT.month, AT.day)
    assert cell.number_format == "yyyy-mm-dd"
    order_day = dated[0][header.index("order_date")]
    assert isinstance(order_day.value, datetime) and order_day.number_format == "yyyy-mm-dd"


def test_an_excel_datetime_is_utc_and_naive():
    from openpyxl import Workbook, load_workbook

    from chalicelib.reports import excel_date

    book = Workbook(write_only=True)
    sheet = book.create_sheet("t")
    sheet.append([excel_date(sheet, "2026-11-30T23:30:00-01:00")])
    buffer = io.BytesIO()
    book.save(buffer)
    cell = load_workbook(io.BytesIO(buffer.getvalue()))["t"]["A1"]
    assert cell.value == datetime(2026, 12, 1, 0, 30, 0) and cell.number_format == "yyyy-mm-dd hh:mm:ss"
