"""Refunds and disputes, from the API and from the emulator's controls."""

from __future__ import annotations

import pytest
import stripe

from devstack.stripe_emulator import ApiError
from tests.integration.stripe_emulator.support import (
    pay_for_session,
    verified_events,
)


# ---------------------------------------------------------------------------
# Refunds
# ---------------------------------------------------------------------------


def test_full_refund_marks_the_charge_refunded_and_sends_refund_created_then_charge_refunded(
    client, emulator, webhook_receiver
):
    payment_intent = pay_for_session(client, emulator)

    refund = client.v1.refunds.create(
        params={"payment_intent": payment_intent, "reason": "requested_by_customer", "metadata": {"ticket": "T-1"}}
    )

    assert refund.id.startswith("re_test_")
    assert (refund.object, refund.status, refund.amount, refund.currency) == ("refund", "succeeded", 895, "gbp")
    assert (refund.payment_intent, refund.reason) == (payment_intent, "requested_by_customer")
    assert refund.metadata.to_dict() == {"ticket": "T-1"}
    _, refund_created, charge_refunded = verified_events(webhook_receiver, 3)
    assert (refund_created.type, refund_created.data.object.id) == ("refund.created", refund.id)
    assert charge_refunded.type == "charge.refunded"
    assert (charge_refunded.data.object.id, charge_refunded.data.object.refunded) == (refund.charge, True)
    charge = client.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (895, True)


def test_partial_refunds_add_up_until_the_charge_is_fully_refunded(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    first = client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 300})
    charge = client.v1.charges.retrieve(first.charge)
    assert (charge.amount_refunded, charge.refunded) == (300, False)
    rest = client.v1.refunds.create(params={"charge": charge.id})

    assert rest.amount == 895 - 300
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (895, True)
    assert [r.id for r in client.v1.refunds.list(params={"payment_intent": payment_intent}).data] == [rest.id, first.id]
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id}).data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 300
    events = [webhook.event for webhook in webhook_receiver.wait_for(5)]
    charge_refunded = [event["data"]["object"] for event in events if event["type"] == "charge.refunded"]
    assert [(c["amount_refunded"], c["refunded"]) for c in charge_refunded] == [(300, False), (895, True)]


def test_refunding_more_than_remains_is_refused(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 800})

    with pytest.raises(stripe.InvalidRequestError) as too_large:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 100})
    client.v1.refunds.create(params={"payment_intent": payment_intent})
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 1})

    assert (too_large.value.http_status, too_large.value.code, too_large.value.param) == (
        400,
        "amount_too_large",
        "amount",
    )
    assert (nothing_left.value.http_status, nothing_left.value.code) == (400, "charge_already_refunded")
    assert [refund.amount for refund in client.v1.refunds.list().data] == [95, 800]


def test_the_same_idempotency_key_twice_gives_one_refund(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)
    options = {"idempotency_key": "refund-order_123"}
    params = {"payment_intent": payment_intent, "amount": 200}

    first = client.v1.refunds.create(params=params, options=options)
    second = client.v1.refunds.create(params=params, options=options)

    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.refunds.list().data) == 1
    assert client.v1.charges.retrieve(first.charge).amount_refunded == 200
    webhook_receiver.wait_for(3)
    assert [event["type"] for event in emulator.events()].count("refund.created") == 1


def test_refund_needs_a_known_payment_and_reason(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    with pytest.raises(stripe.InvalidRequestError) as no_target:
        client.v1.refunds.create(params={"amount": 100})
    with pytest.raises(stripe.InvalidRequestError) as bad_reason:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "reason": "changed_mind"})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.create(params={"payment_intent": "pi_test_unknown"})

    assert (no_target.value.http_status, no_target.value.code) == (400, "parameter_missing")
    assert (bad_reason.value.http_status, bad_reason.value.param) == (400, "reason")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert client.v1.refunds.list().data == []


def test_a_dashboard_refund_sends_the_same_events_as_an_api_refund(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    refund = emulator.refund(payment_intent, amount=100)

    # Delivered before refund() returns.
    assert [webhook.event["type"] for webhook in webhook_receiver.received] == [
        "checkout.session.completed",
        "refund.created",
        "charge.refunded",
    ]
    assert (refund["amount"], refund["payment_intent"], refund["reason"]) == (100, payment_intent, None)
    assert client.v1.refunds.retrieve(refund["id"]).amount == 100
    charge = client.v1.charges.retrieve(refund["charge"])
    assert (charge.amount_refunded, charge.refunded) == (100, False)
    assert emulator.refund(payment_intent)["amount"] == 795


# ---------------------------------------------------------------------------
# Disputes
# ---------------------------------------------------------------------------


def test_a_dispute_marks_the_charge_disputed_and_sends_created_then_closed(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    dispute = emulator.dispute(payment_intent)
    charge = client.v1.charges.retrieve(dispute["charge"])
    closed = emulator.close_dispute(dispute["id"], won=False)

    assert dispute["id"].startswith("dp_test_")
    assert (dispute["object"], dispute["status"], dispute["reason"]) == ("dispute", "needs_response", "fraudulent")
    assert (dispute["amount"], dispute["currency"], dispute["payment_intent"]) == (895, "gbp", payment_intent)
    assert charge.disputed is True
    assert closed["status"] == "lost"
    _, created, closed_event = verified_events(webhook_receiver, 3)
    assert [(event.type, event.data.object.status) for event in (created, closed_event)] == [
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
    ]
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"
    assert [d.id for d in client.v1.disputes.list(params={"payment_intent": payment_intent}).data] == [dispute["id"]]
    assert [d.id for d in client.v1.disputes.list(params={"charge": charge.id}).data] == [dispute["id"]]


def test_a_partial_dispute_can_be_won_once_and_a_charge_is_disputed_only_once(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    dispute = emulator.dispute(payment_intent, amount=500, reason="product_not_received")

    assert (dispute["amount"], dispute["reason"]) == (500, "product_not_received")
    with pytest.raises(ApiError) as twice:
        emulator.dispute(payment_intent)
    assert twice.value.code == "charge_disputed"
    assert emulator.close_dispute(dispute["id"], won=True)["status"] == "won"
    with pytest.raises(ApiError) as reclosed:
        emulator.close_dispute(dispute["id"], won=False)
    assert reclosed.value.status == 400
    with pytest.raises(ApiError) as bad_reason:
        emulator.dispute(pay_for_session(client, emulator), reason="bored")
    assert bad_reason.value.param == "reason"
