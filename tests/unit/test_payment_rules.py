"""How Stripe's news changes an order: every fact applied early, late, twice and out of order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.money import Money
from chalicelib.domain.changes import Effect, Source
from chalicelib.domain.lifecycle import (
    abandon_checkout,
    accept_payment,
    expire_checkout,
    fail_payment,
    note_processing,
    open_checkout,
    place_order,
    reconcile_money,
)
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.domain.payments import MoneyView, money_state
from tests.builders import NOW, delivery_form

STRIPE = Source("stripe", "evt_1")
PAID = Money(895, "gbp")


def placed(reference: str):
    """A paid order as placed: awaiting payment, no checkout session yet."""
    eligibility = Eligibility(PAID, EligibilityReason.STANDARD_PRICE)
    return place_order(reference, "cert", eligibility, parse_delivery_details(delivery_form()), NOW).order


def awaiting():
    order = placed("TK-AAAAA-BBBBB")
    return open_checkout(order, "cs_1", "https://pay/cs_1", NOW + timedelta(hours=1), 1, NOW).order


def paid(**changes):
    return replace(accept_payment(awaiting(), PAID, "pi_1", STRIPE, NOW).order, **changes)


def view(refunded=0, dispute=None):
    return MoneyView("TK-AAAAA-BBBBB", "pi_1", PAID, refunded, dispute)


def test_payment_confirms_the_order_and_asks_for_release():
    outcome = accept_payment(awaiting(), PAID, "pi_1", STRIPE, NOW)
    order = outcome.order
    assert (order.state, order.payment, order.payment_intent_id) == (OrderState.CONFIRMED, PaymentState.PAID, "pi_1")
    assert outcome.effects == {Effect.RELEASE_TO_MANUFACTURER}
    assert order.history[-1].change == "paid" and order.history[-1].stripe_event_id == "evt_1"
    assert "evt_1" in order.processed_events and order.hold_until is None


@pytest.mark.parametrize("money", [Money(500, "gbp"), Money(895, "eur"), None])
def test_a_payment_that_does_not_match_is_flagged_not_fulfilled(money):
    outcome = accept_payment(awaiting(), money, "pi_1", STRIPE, NOW)
    assert outcome.order.payment is PaymentState.AWAITING and outcome.effects == frozenset()
    assert outcome.order.payment_flag.startswith("amount_mismatch")


def test_a_late_expiry_never_unpays_an_order():
    outcome = expire_checkout(paid(), "cs_1", Source("stripe", "evt_2"), NOW)
    assert (outcome.order.state, outcome.order.payment) == (OrderState.CONFIRMED, PaymentState.PAID)
    assert outcome.effects == frozenset() and "ignored" in outcome.order.history[-1].change


def test_expiry_gives_the_certificate_back():
    outcome = expire_checkout(awaiting(), "cs_1", Source("stripe", "evt_2"), NOW)
    assert outcome.order.state is OrderState.EXPIRED and outcome.effects == {Effect.RELEASE_CLAIM}


def test_expiry_of_a_superseded_session_changes_nothing():
    outcome = expire_checkout(awaiting(), "cs_old", Source("stripe", "evt_2"), NOW)
    assert outcome.order.state is OrderState.PLACED and outcome.effects == frozenset()


def test_a_payment_arriving_after_expiry_is_honoured_and_takes_the_claim_back():
    expired = expire_checkout(awaiting(), "cs_1", Source("stripe", "evt_2"), NOW).order
    outcome = accept_payment(expired, PAID, "pi_1", Source("stripe", "evt_3"), NOW)
    assert (outcome.order.state, outcome.order.payment) == (OrderState.CONFIRMED, PaymentState.PAID)
    assert outcome.effects == {Effect.RECLAIM, Effect.RELEASE_TO_MANUFACTURER}
    assert "honoured" in outcome.order.history[-1].change


def test_a_second_payment_for_a_paid_order_is_flagged_for_refund():
    outcome = accept_payment(paid(), PAID, "pi_2", Source("stripe", "evt_9"), NOW)
    assert outcome.order.payment_flag == "duplicate_payment:pi_2" and outcome.effects == frozenset()


def test_async_payments_wait_then_succeed_or_fail():
    processing = note_processing(awaiting(), "pi_1", STRIPE, NOW).order
    assert processing.payment_processing and processing.state is OrderState.PLACED
    assert expire_checkout(processing, "cs_1", Source("stripe", "evt_2"), NOW).order.state is OrderState.PLACED
    failed = fail_payment(processing, Source("stripe", "evt_3"), NOW)
    assert (failed.order.state, failed.order.payment) == (OrderState.CANCELLED, PaymentState.FAILED)
    assert failed.effects == {Effect.RELEASE_CLAIM}
    assert fail_payment(paid(), Source("stripe", "evt_4"), NOW).order.payment is PaymentState.PAID


def test_partial_then_full_refund_before_dispatch_cancels_fulfilment():
    partial = reconcile_money(paid(), view(refunded=300), Source("stripe", "evt_r1"), NOW).order
    assert (partial.payment, partial.refunded_pence, partial.fulfilment) == (
        PaymentState.PARTIALLY_REFUNDED,
        300,
        FulfilmentState.NOT_RELEASED,
    )
    full = reconcile_money(partial, view(refunded=895), Source("stripe", "evt_r2"), NOW)
    assert (full.order.payment, full.order.fulfilment, full.order.state) == (
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
        OrderState.CANCELLED,
    )
    # not yet released, so there is nothing to tell the kit maker: the relay's list drops it
    assert full.effects == frozenset() and not full.order.awaits_release and not full.order.cancellation_to_tell


def test_a_full_refund_after_dispatch_leaves_the_fulfilment_alone():
    dispatched = paid(fulfilment=FulfilmentState.DISPATCHED)
    outcome = reconcile_money(dispatched, view(refunded=895), Source("stripe", "evt_r"), NOW)
    assert (outcome.order.payment, outcome.order.fulfilment) == (PaymentState.REFUNDED, FulfilmentState.DISPATCHED)
    assert outcome.order.state is OrderState.CONFIRMED and outcome.effects == frozenset()


def test_an_older_view_never_shrinks_the_refunded_amount():
    refunded = reconcile_money(paid(), view(refunded=500), Source("stripe", "evt_b"), NOW).order
    stale = reconcile_money(refunded, view(refunded=300), Source("stripe", "evt_a"), NOW).order
    assert stale.refunded_pence == 500 and stale.payment is PaymentState.PARTIALLY_REFUNDED


def test_a_refund_noted_before_the_payment_stops_the_release():
    early = reconcile_money(awaiting(), view(refunded=895), Source("stripe", "evt_r"), NOW).order
    assert early.payment is PaymentState.AWAITING and early.refunded_pence == 895
    outcome = accept_payment(early, PAID, "pi_1", Source("stripe", "evt_p"), NOW)
    assert (outcome.order.payment, outcome.order.fulfilment) == (PaymentState.REFUNDED, FulfilmentState.CANCELLED)
    assert Effect.RELEASE_TO_MANUFACTURER not in outcome.effects


def test_disputes_mark_the_payment_until_won():
    disputed = reconcile_money(paid(), view(dispute="needs_response"), Source("stripe", "evt_d1"), NOW).order
    assert disputed.payment is PaymentState.DISPUTED
    won = reconcile_money(disputed, view(dispute="won"), Source("stripe", "evt_d2"), NOW).order
    assert won.payment is PaymentState.PAID
    lost = reconcile_money(disputed, view(dispute="lost"), Source("stripe", "evt_d3"), NOW).order
    assert lost.payment is PaymentState.DISPUTED


def test_money_state_from_stripes_figures():
    assert money_state(PAID, 0, None) is PaymentState.PAID
    assert money_state(PAID, 1, None) is PaymentState.PARTIALLY_REFUNDED
    assert money_state(PAID, 895, None) is PaymentState.REFUNDED
    assert money_state(PAID, 0, "under_review") is PaymentState.DISPUTED


def test_an_order_with_no_session_is_abandoned_but_one_with_a_session_is_kept():
    bare = placed("TK-AAAAA-CCCCC")
    assert abandon_checkout(bare, Source("system"), NOW).effects == {Effect.RELEASE_CLAIM}
    assert abandon_checkout(awaiting(), Source("system"), NOW).effects == frozenset()


def test_every_fact_is_logged_with_who_and_which_event():
    order = reconcile_money(
        paid(), view(refunded=100), Source("operator:alice", "refund-key:k"), NOW, " (broken)"
    ).order
    entry = order.history[-1]
    assert (entry.actor, entry.stripe_event_id) == ("operator:alice", "refund-key:k") and "(broken)" in entry.change
    assert [e.actor for e in order.history] == ["holder", "system", "stripe", "operator:alice"]


def test_an_order_that_ended_before_any_money_was_taken_says_so_not_awaiting():
    expired = expire_checkout(awaiting(), "cs_1", Source("stripe", "evt_2"), NOW).order
    abandoned = abandon_checkout(placed("TK-AAAAA-DDDDD"), Source("system"), NOW).order
    for ended in (expired, abandoned):
        assert ended.payment is PaymentState.NOT_TAKEN and not ended.awaits_payment
    honoured = accept_payment(expired, PAID, "pi_1", Source("stripe", "evt_3"), NOW).order
    assert honoured.payment is PaymentState.PAID  # a late payment is still honoured
