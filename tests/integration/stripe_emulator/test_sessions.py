"""Creating Checkout Sessions, and idempotent retries of the create call."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.integration.stripe_emulator.support import (
    create_session,
    line_item,
    session_params,
)


# ---------------------------------------------------------------------------
# Creating sessions
# ---------------------------------------------------------------------------


def test_created_session_is_open_with_amount_currency_reference_and_metadata(client, emulator):
    session = create_session(client)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_subtotal, session.amount_total, session.currency) == (895, 895, "gbp")
    assert session.client_reference_id == "order_123"
    assert session.customer_email == "buyer@example.test"
    assert session.metadata.to_dict() == {"order_ref": "TK-0001"}
    assert session.payment_intent is None
    assert session.url == f"{emulator.base_url}/c/pay/{session.id}"
    assert session.livemode is False
    assert session.expires_at - session.created == 24 * 60 * 60


def test_amount_total_multiplies_unit_amount_by_quantity_across_items(client):
    items = [line_item("Pass", 895, quantity=2), line_item("Sticker", 100, quantity=3)]

    session = create_session(client, line_items=items)

    assert session.amount_total == 2 * 895 + 3 * 100


def test_created_session_can_be_retrieved_and_listed(client):
    session = create_session(client)

    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    listed = client.v1.checkout.sessions.list()
    assert [item.id for item in listed.data] == [session.id]
    assert listed.has_more is False


def test_missing_line_items_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=session_params(line_items=None))

    assert refused.value.param == "line_items"
    assert refused.value.http_status == 400


def test_expires_at_under_30_minutes_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_session(client, expires_at=int(time.time()) + 10 * 60)

    assert refused.value.param == "expires_at"
    assert "30 minutes" in str(refused.value.user_message)


def test_expires_at_within_the_allowed_window_is_kept(client):
    expires_at = int(time.time()) + 45 * 60

    session = create_session(client, expires_at=expires_at)

    assert session.expires_at == expires_at


# ---------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------


def test_same_idempotency_key_and_params_replays_the_same_session(client):
    options = {"idempotency_key": "order_123-attempt-1"}

    first = client.v1.checkout.sessions.create(params=session_params(), options=options)
    second = client.v1.checkout.sessions.create(params=session_params(), options=options)

    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_same_idempotency_key_with_different_params_is_an_idempotency_error(client):
    options = {"idempotency_key": "order_123-attempt-1"}
    client.v1.checkout.sessions.create(params=session_params(), options=options)

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=session_params(client_reference_id="other"), options=options)


def test_requests_without_an_explicit_key_create_distinct_sessions(client):
    first = create_session(client)
    second = create_session(client)

    assert first.id != second.id
