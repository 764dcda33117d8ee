"""Session expiry (on demand, on look-up and by the sweeper) and Stripe-shaped errors."""

from __future__ import annotations

import time

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator
from tests.integration.stripe_emulator.support import (
    WEBHOOK_SECRET,
    create_session,
    raw_api_request,
    request_page,
    stripe_client_for,
)


# ---------------------------------------------------------------------------
# Expiry
# ---------------------------------------------------------------------------


def test_expire_sends_expired_event_and_a_second_expire_is_refused(client, emulator, webhook_receiver):
    session = create_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    [webhook] = webhook_receiver.wait_for(1)
    event = stripe.Webhook.construct_event(webhook.body, webhook.signature, WEBHOOK_SECRET)
    assert (event.type, event.data.object.id) == ("checkout.session.expired", session.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_expired_session_page_shows_a_message_instead_of_buttons(client, emulator):
    session = create_session(client)
    emulator.expire(session.id)

    response = request_page(emulator, "GET", f"/c/pay/{session.id}")

    assert response.status == 200
    assert "has expired" in response.body
    assert "<button" not in response.body


def test_session_expires_by_itself_once_expires_at_has_passed(webhook_receiver):
    now = [time.time()]
    emulator = StripeEmulator(
        port=0, webhook_url=webhook_receiver.url, webhook_secret=WEBHOOK_SECRET, clock=lambda: now[0]
    )
    with emulator:
        client = stripe_client_for(emulator)
        session = create_session(client)
        now[0] += 24 * 60 * 60 + 1

        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        [webhook] = webhook_receiver.wait_for(1)
        assert webhook.event["type"] == "checkout.session.expired"


def test_background_sweeper_expires_sessions_nobody_looks_at(webhook_receiver):
    now = [time.time()]
    emulator = StripeEmulator(port=0, webhook_url=webhook_receiver.url, clock=lambda: now[0], sweep_interval=0.02)
    with emulator:
        create_session(stripe_client_for(emulator))
        now[0] += 24 * 60 * 60 + 1

        [webhook] = webhook_receiver.wait_for(1)
        assert webhook.event["type"] == "checkout.session.expired"


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_non_test_key_is_an_authentication_error(emulator):
    with pytest.raises(stripe.AuthenticationError):
        stripe_client_for(emulator, api_key="sk_live_nope").v1.checkout.sessions.list()


def test_unknown_session_is_an_invalid_request_error(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_unknown")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_unknown_route_is_a_stripe_shaped_404(emulator):
    # Charges are emulated now, so use a resource the emulator does not know at all.
    status, body, _ = raw_api_request(emulator, "GET", "/v1/customers/cus_1")

    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"


def test_malformed_form_body_is_a_stripe_shaped_400(emulator):
    conflicting_form = "metadata[a]=1&metadata=2"

    status, body, _ = raw_api_request(emulator, "POST", "/v1/checkout/sessions", body=conflicting_form)

    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_non_integer_unit_amount_is_a_stripe_shaped_400(emulator):
    form = (
        "mode=payment&success_url=https://tracekit.test/ok&line_items[0][quantity]=1"
        "&line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=8.95"
        "&line_items[0][price_data][product_data][name]=Pass"
    )
    status, body, _ = raw_api_request(emulator, "POST", "/v1/checkout/sessions", body=form)

    assert status == 400
    assert body["error"]["param"] == "line_items[0][price_data][unit_amount]"
