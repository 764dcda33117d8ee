"""Paying, declining, and the signed webhooks that follow (delivery, retries, redelivery)."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.integration.stripe_emulator.support import (
    PRODUCT_NAME,
    WEBHOOK_SECRET,
    create_session,
    raw_api_request,
    request_page,
)


# ---------------------------------------------------------------------------
# Paying, declining and webhooks
# ---------------------------------------------------------------------------


def test_pay_button_redirects_to_success_url_after_the_webhook_was_delivered(client, emulator, webhook_receiver):
    session = create_session(client)

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    assert response.status == 303
    assert response.location == f"https://tracekit.test/paid?session_id={session.id}"
    # Delivered synchronously: already there when the redirect comes back.
    assert len(webhook_receiver.received) == 1


def test_completed_webhook_verifies_with_the_sdk_and_carries_the_paid_session(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay(session.id)

    [webhook] = webhook_receiver.wait_for(1)
    event = stripe.Webhook.construct_event(webhook.body, webhook.signature, WEBHOOK_SECRET)

    assert webhook.content_type == "application/json"
    assert event.type == "checkout.session.completed"
    assert event.api_version == "2024-06-20"
    paid = event.data.object
    assert (paid.id, paid.status, paid.payment_status) == (session.id, "complete", "paid")
    assert paid.payment_intent.startswith("pi_test_")
    assert paid.client_reference_id == "order_123"
    assert [stored["id"] for stored in emulator.events()] == [event.id]


def test_webhook_signed_with_another_secret_fails_verification(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)

    [webhook] = webhook_receiver.wait_for(1)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook.body, webhook.signature, "whsec_wrong")


def test_paid_session_has_a_succeeded_payment_intent_with_the_metadata(client, emulator):
    session = create_session(client)
    emulator.pay(session.id)

    paid = client.v1.checkout.sessions.retrieve(session.id)
    payment_intent = client.v1.payment_intents.retrieve(paid.payment_intent)

    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert payment_intent.status == "succeeded"
    assert (payment_intent.amount, payment_intent.currency) == (895, "gbp")
    assert payment_intent.metadata.to_dict() == {"order_ref": "TK-0001"}
    assert payment_intent.latest_charge.startswith("ch_test_")


def test_paid_session_can_be_retrieved_with_payment_intent_and_line_items_expanded(client, emulator):
    session = create_session(client)
    emulator.pay(session.id)

    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent", "line_items"]})

    assert expanded.payment_intent.status == "succeeded"
    assert [item.description for item in expanded.line_items.data] == [PRODUCT_NAME]
    assert client.v1.checkout.sessions.line_items.list(session.id).data[0].amount_total == 895


def test_webhook_handler_can_call_the_api_while_the_event_is_being_delivered(client, emulator, webhook_receiver):
    statuses_seen: list[str] = []
    webhook_receiver.on_delivery = lambda webhook: statuses_seen.append(
        client.v1.checkout.sessions.retrieve(webhook.event["data"]["object"]["id"]).status
    )
    session = create_session(client)

    emulator.pay(session.id)

    assert statuses_seen == ["complete"]


def test_decline_keeps_the_buyer_on_the_page_and_sends_no_event(client, emulator, webhook_receiver):
    session = create_session(client)

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/decline")

    assert response.status == 402
    assert "Your card was declined. Try again or use a different card." in response.body
    assert ">Pay</button>" in response.body and ">Decline</button>" in response.body
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert emulator.events() == []
    assert webhook_receiver.received == []


def test_paying_twice_is_refused_and_sends_one_event(client, emulator):
    session = create_session(client)
    request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    assert response.status == 409
    assert "This payment is complete" in response.body
    assert ">Pay</button>" not in response.body
    assert len(emulator.events()) == 1


def test_failing_webhook_endpoint_is_retried_until_it_succeeds(client, emulator, webhook_receiver):
    webhook_receiver.statuses = [500, 503]

    emulator.pay(create_session(client).id)

    deliveries = webhook_receiver.wait_for(3)
    assert len({delivery.event["id"] for delivery in deliveries}) == 1
    time.sleep(0.2)
    assert len(webhook_receiver.received) == 3


def test_delivery_gives_up_after_five_attempts(client, emulator, webhook_receiver):
    webhook_receiver.statuses = [500] * 10

    emulator.pay(create_session(client).id)

    webhook_receiver.wait_for(5)
    time.sleep(0.3)
    assert len(webhook_receiver.received) == 5


def test_redeliver_sends_the_stored_event_again(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)
    [event] = emulator.events()

    assert emulator.redeliver(event["id"]) == 200

    first, second = webhook_receiver.wait_for(2)
    assert first.body == second.body


def test_redeliver_endpoint_resends_over_http(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)
    [event] = emulator.events()

    status, body, _ = raw_api_request(emulator, "POST", f"/_emulator/events/{event['id']}/redeliver")

    assert (status, body["webhook_status"]) == (200, 200)
    assert len(webhook_receiver.wait_for(2)) == 2


def test_events_are_only_stored_when_no_webhook_url_is_set(client, emulator, webhook_receiver):
    emulator.webhook_url = None

    emulator.pay(create_session(client).id)

    assert [event["type"] for event in emulator.events()] == ["checkout.session.completed"]
    assert webhook_receiver.received == []


def test_stored_event_can_be_retrieved_through_the_api(client, emulator):
    emulator.pay(create_session(client).id)
    [stored] = emulator.events()

    event = client.v1.events.retrieve(stored["id"])

    assert event.type == "checkout.session.completed"
