"""Charges, and bank transfers that settle later either way."""

from __future__ import annotations

import pytest
import stripe

from devstack.stripe_emulator import ApiError
from tests.integration.stripe_emulator.support import (
    create_session,
    pay_for_session,
    raw_api_request,
    request_page,
    verified_events,
)


# ---------------------------------------------------------------------------
# Charges
# ---------------------------------------------------------------------------


def test_paying_stores_a_succeeded_charge_without_the_payment_intent_metadata(client, emulator):
    payment_intent = client.v1.payment_intents.retrieve(pay_for_session(client, emulator))

    charge = client.v1.charges.retrieve(payment_intent.latest_charge)

    assert (charge.id, charge.object, charge.payment_intent) == (
        payment_intent.latest_charge,
        "charge",
        payment_intent.id,
    )
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.currency) == (895, 895, 0, "gbp")
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert (charge.refunded, charge.disputed) == (False, False)
    assert charge.balance_transaction.startswith("txn_test_")
    # Stripe does not copy PaymentIntent metadata onto the charge.
    assert charge.metadata.to_dict() == {}


def test_charges_are_listed_and_filtered_by_payment_intent(client, emulator):
    first = pay_for_session(client, emulator)
    second = pay_for_session(client, emulator)

    filtered = client.v1.charges.list(params={"payment_intent": first})

    assert [charge.payment_intent for charge in filtered.data] == [first]
    assert [charge.payment_intent for charge in client.v1.charges.list().data] == [second, first]


def test_payment_intent_can_be_retrieved_with_its_charge_expanded(client, emulator):
    payment_intent_id = pay_for_session(client, emulator)

    payment_intent = client.v1.payment_intents.retrieve(payment_intent_id, params={"expand": ["latest_charge"]})

    assert (payment_intent.latest_charge.object, payment_intent.latest_charge.amount) == ("charge", 895)


def test_unknown_charge_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.charges.retrieve("ch_test_unknown")

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


# ---------------------------------------------------------------------------
# Bank transfers (async payments)
# ---------------------------------------------------------------------------


def test_bank_transfer_button_completes_the_session_unpaid_and_redirects(client, emulator, webhook_receiver):
    session = create_session(client)
    assert (
        "Pay by bank transfer (confirms later)</button>" in request_page(emulator, "GET", f"/c/pay/{session.id}").body
    )

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay_async")

    assert (response.status, response.location) == (303, f"https://tracekit.test/paid?session_id={session.id}")
    # Delivered before the redirect, as for Pay.
    [webhook] = webhook_receiver.received
    assert (webhook.event["type"], webhook.event["data"]["object"]["payment_status"]) == (
        "checkout.session.completed",
        "unpaid",
    )
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert (completed.status, completed.payment_status) == ("complete", "unpaid")
    payment_intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    assert (payment_intent.status, payment_intent.latest_charge) == ("processing", None)
    assert client.v1.charges.list(params={"payment_intent": payment_intent.id}).data == []
    assert "bank transfer has been started" in request_page(emulator, "GET", f"/c/pay/{session.id}").body


def test_settled_bank_transfer_sends_async_payment_succeeded_and_creates_the_charge(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay_async(session.id)

    emulator.settle_async(session.id, succeeded=True)

    events = verified_events(webhook_receiver, 2)
    assert [(event.type, event.data.object.payment_status) for event in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_succeeded", "paid"),
    ]
    payment_intent = client.v1.payment_intents.retrieve(events[0].data.object.payment_intent)
    assert (payment_intent.status, payment_intent.amount_received) == ("succeeded", 895)
    charge = client.v1.charges.retrieve(payment_intent.latest_charge)
    assert (charge.amount, charge.status, charge.payment_intent) == (895, "succeeded", payment_intent.id)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_failed_bank_transfer_sends_async_payment_failed_and_creates_no_charge(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay_async(session.id)

    emulator.settle_async(session.id, succeeded=False)

    events = verified_events(webhook_receiver, 2)
    assert [(event.type, event.data.object.payment_status) for event in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
    ]
    payment_intent = client.v1.payment_intents.retrieve(events[0].data.object.payment_intent)
    assert (payment_intent.status, payment_intent.latest_charge) == ("requires_payment_method", None)
    assert client.v1.charges.list().data == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_settle_endpoint_takes_the_outcome_from_the_form_or_the_query(client, emulator):
    by_form, by_query = create_session(client), create_session(client)
    emulator.pay_async(by_form.id)
    emulator.pay_async(by_query.id)

    form_status, settled, _ = raw_api_request(
        emulator, "POST", f"/_emulator/sessions/{by_form.id}/settle", body="outcome=succeeded"
    )
    query_status, failed, _ = raw_api_request(
        emulator, "POST", f"/_emulator/sessions/{by_query.id}/settle?outcome=failed"
    )

    assert (form_status, settled["payment_status"]) == (200, "paid")
    assert (query_status, failed["payment_status"]) == (200, "unpaid")
    assert [event["type"] for event in emulator.events()][-2:] == [
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    ]


def test_only_a_pending_bank_transfer_can_be_settled(client, emulator):
    card_session = create_session(client)
    emulator.pay(card_session.id)
    transfer = create_session(client)
    emulator.pay_async(transfer.id)
    emulator.settle_async(transfer.id, succeeded=True)

    for session_id in (card_session.id, transfer.id):
        with pytest.raises(ApiError) as refused:
            emulator.settle_async(session_id, succeeded=True)
        assert (refused.value.status, refused.value.code) == (400, "payment_intent_unexpected_state")
    status, body, _ = raw_api_request(emulator, "POST", f"/_emulator/sessions/{transfer.id}/settle?outcome=maybe")
    assert (status, body["error"]["param"]) == (400, "outcome")


def test_a_pending_bank_transfer_cannot_be_refunded(client, emulator):
    session = create_session(client)
    emulator.pay_async(session.id)
    payment_intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": payment_intent})

    assert refused.value.code == "payment_intent_unexpected_state"
