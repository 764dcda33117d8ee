"""The campaign dashboard's figures from facts alone: what counts as an order, the days, the
dispatch waits, refunds and replacements, and uptake against the letters sent."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from chalicelib.domain.dashboard import CampaignFacts, campaign_figures
from chalicelib.domain.orders import OrderState, PaymentState
from chalicelib.domain.reconciliation import Period
from chalicelib.web.charts import bars, orders_per_day

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 4))


def fact(at=DAY, free=False, state=OrderState.CONFIRMED, payment=None, refunded=0, replacements=0, dispatched=None):
    payment = payment or (PaymentState.NOT_REQUIRED if free else PaymentState.PAID)
    return CampaignFacts(at, free, state, payment, refunded, replacements, dispatched)


def test_only_orders_paid_for_or_free_count_each_on_its_day_paid_and_free_apart():
    facts = [
        fact(),
        fact(free=True),
        fact(at=DAY + timedelta(days=1), free=True),
        fact(state=OrderState.PLACED, payment=PaymentState.AWAITING),  # still at Stripe's checkout
        fact(state=OrderState.EXPIRED, payment=PaymentState.NOT_TAKEN),  # its checkout lapsed
        fact(state=OrderState.CANCELLED, payment=PaymentState.REFUNDED, refunded=895),  # an order, then cancelled
        fact(at=DAY + timedelta(days=5)),  # outside the period
    ]
    figures = campaign_figures(facts, PERIOD, 30_000, stuck=2, dead_letters=1)
    assert [(d.day.day, d.paid, d.free) for d in figures.days] == [(1, 0, 0), (2, 2, 1), (3, 0, 1)]
    assert (figures.orders, figures.paid, figures.free) == (4, 2, 2)
    assert (figures.refunds, figures.refunded_pence) == (1, 895)
    assert (figures.stuck, figures.dead_letters) == (2, 1)
    assert figures.uptake_percent == "0.0"  # 4 of 30,000, to one decimal place
    assert campaign_figures(facts, PERIOD, 40, 0, 0).uptake_percent == "10.0"


def test_dispatch_waits_fall_in_bands_from_the_order_to_its_first_dispatch_with_their_median():
    waits = [timedelta(hours=h) for h in (5, 24, 30, 60, 100, 200)]
    facts = [fact(dispatched=DAY + wait, replacements=1 if wait.days > 7 else 0) for wait in waits] + [fact()]
    figures = campaign_figures(facts, PERIOD, 30_000, 0, 0)
    assert dict(figures.dispatch_bands) == {
        "Within 1 day": 2,
        "1 to 2 days": 1,
        "2 to 3 days": 1,
        "3 to 5 days": 1,
        "More than 5 days": 1,
    }
    assert figures.median_dispatch_hours == 45.0  # of 5, 24, 30, 60, 100, 200: the undispatched is not a wait
    assert figures.replacements == 1
    assert campaign_figures([fact()], PERIOD, 30_000, 0, 0).median_dispatch_hours is None


@pytest.mark.parametrize("length", [1, 2, 28, 366])
def test_a_chart_of_any_period_the_form_allows_is_an_image_with_a_name_and_no_script_or_style(length):
    days = [(date(2026, 1, 1) + timedelta(days=n), n % 4, 0) for n in range(length)]
    for svg in (orders_per_day(days), bars([("Within 1 day", 0), ("More than 5 days", 0)], "Waits")):
        assert svg.startswith('<svg role="img" aria-label="') and 'viewBox="0 0 640 320"' in svg
        assert "<script" not in svg and "<style" not in svg and "style=" not in svg
    assert "01 Jan" in orders_per_day(days)  # the first day is labelled
