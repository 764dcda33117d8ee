"""The kit maker's statement, its figures worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timezone

from chalicelib.domain.kit_statement import KitFacts, KitKind, statement
from chalicelib.domain.orders import FulfilmentState
from chalicelib.domain.reconciliation import Period

NOVEMBER = Period(date(2026, 11, 1), date(2026, 12, 1))
RELEASED = datetime(2026, 10, 20, 9, 0, tzinfo=timezone.utc)


def dispatched(n: int, reason: str, day: date) -> KitFacts:
    at = datetime(day.year, day.month, day.day, 14, 0, tzinfo=timezone.utc)
    return KitFacts(f"F-{n:03}", reason, FulfilmentState.DISPATCHED, RELEASED, at, None)


def test_the_statement_counts_kits_by_kind_at_the_unit_price():
    kits = [
        dispatched(1, "standard_price", date(2026, 11, 1)),
        dispatched(2, "standard_price", date(2026, 11, 15)),
        dispatched(3, "standard_price", date(2026, 11, 30)),
        dispatched(4, "register_flag", date(2026, 11, 2)),
        dispatched(5, "register_flag", date(2026, 11, 3)),
        dispatched(6, "free_area", date(2026, 11, 4)),
        dispatched(7, "standard_price", date(2026, 12, 1)),  # outside: the end is exclusive
        KitFacts(
            "F-008",
            "standard_price",
            FulfilmentState.CANCELLED,
            RELEASED,
            None,
            datetime(2026, 11, 5, tzinfo=timezone.utc),
        ),
        KitFacts(
            "F-009", "standard_price", FulfilmentState.CANCELLED, None, None, datetime(2026, 11, 5, tzinfo=timezone.utc)
        ),
    ]
    result = statement(kits, NOVEMBER, 895)
    assert result.counts == {
        KitKind.PAID: 3,
        KitKind.FREE_REGISTER_FLAG: 2,
        KitKind.FREE_AREA: 1,
        KitKind.CANCELLED_AFTER_RELEASE: 1,
        KitKind.REPLACEMENT: 0,
        KitKind.RETURNED: 0,
    }
    assert result.amounts_pence[KitKind.PAID] == 2685  # 3 x 895
    assert result.amounts_pence[KitKind.FREE_REGISTER_FLAG] == 1790  # 2 x 895
    assert result.total_pence == 6265  # 7 x 895
    assert [line.fulfilment_id for line in result.lines] == [
        "F-001",
        "F-004",
        "F-005",
        "F-006",
        "F-008",
        "F-002",
        "F-003",
    ]


def test_a_replacement_counts_as_one_and_the_lost_kit_in_its_own_kind_and_period():
    lost_at = datetime(2026, 10, 20, tzinfo=timezone.utc)
    replaced = KitFacts(
        "F-010-2",
        "register_flag",
        FulfilmentState.DISPATCHED,
        RELEASED,
        datetime(2026, 11, 6, tzinfo=timezone.utc),
        None,
        earlier_dispatches=(("F-010", lost_at),),
    )
    november = statement([replaced], NOVEMBER, 895)
    assert november.counts[KitKind.REPLACEMENT] == 1 and november.counts[KitKind.FREE_REGISTER_FLAG] == 0
    october = statement([replaced], Period(date(2026, 10, 1), date(2026, 11, 1)), 895)
    assert [(line.fulfilment_id, line.kind) for line in october.lines] == [("F-010", KitKind.FREE_REGISTER_FLAG)]


def test_a_returned_parcel_is_a_line_of_its_own_at_its_dispatch_and_the_kit_sent_again_a_replacement():
    posted = datetime(2026, 11, 3, tzinfo=timezone.utc)
    returned = KitFacts("F-020", "standard_price", FulfilmentState.RETURNED, RELEASED, posted, None)
    november = statement([returned], NOVEMBER, 895)
    assert [(line.fulfilment_id, line.kind, line.at) for line in november.lines] == [
        ("F-020", KitKind.RETURNED, posted)
    ]
    assert (november.counts[KitKind.RETURNED], november.counts[KitKind.PAID], november.total_pence) == (1, 0, 895)
    sent_again = KitFacts(
        "F-020-2",
        "standard_price",
        FulfilmentState.DISPATCHED,
        RELEASED,
        datetime(2026, 11, 20, tzinfo=timezone.utc),
        None,
        earlier_dispatches=(("F-020", posted),),
        earlier_returned=frozenset({"F-020"}),
    )
    both = statement([sent_again], NOVEMBER, 895)
    assert [(line.fulfilment_id, line.kind) for line in both.lines] == [
        ("F-020", KitKind.RETURNED),
        ("F-020-2", KitKind.REPLACEMENT),
    ]
    assert both.total_pence == 2 * 895  # two kits made and posted: 1790p
