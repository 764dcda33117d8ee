"""Fault injection: failed and slow requests, and the SDK's retries against them."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator
from tests.integration.stripe_emulator.support import (
    create_session,
    pay_for_session,
    raw_api_request,
)


# ---------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------


@pytest.fixture
def fast_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the SDK's retry back-off (at least 0.5 s a retry) so these tests stay quick."""
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)


def retrying_client(emulator: StripeEmulator, max_network_retries: int) -> stripe.StripeClient:
    """An SDK client that retries like production code does."""
    return stripe.StripeClient(
        "sk_test_x", base_addresses={"api": emulator.base_url}, max_network_retries=max_network_retries
    )


def test_an_injected_failure_is_retried_by_the_sdk_and_creates_one_session(emulator, fast_sdk_retries):
    client = retrying_client(emulator, max_network_retries=2)
    emulator.fail_next_requests(1)

    session = create_session(client)

    assert emulator.api_requests() == [("POST", "/v1/checkout/sessions")] * 2
    assert [listed.id for listed in client.v1.checkout.sessions.list().data] == [session.id]


def test_failures_outlasting_the_sdk_retries_raise_api_error_and_create_nothing(emulator, fast_sdk_retries):
    client = retrying_client(emulator, max_network_retries=1)
    emulator.fail_next_requests(5)

    with pytest.raises(stripe.APIError) as failed:
        create_session(client)

    assert failed.value.http_status == 500
    assert emulator.api_requests() == [("POST", "/v1/checkout/sessions")] * 2
    emulator.fail_next_requests(0)
    assert client.v1.checkout.sessions.list().data == []
    assert emulator.events() == []


def test_failures_can_be_injected_over_http_from_another_process(client, emulator):
    status, body, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body="count=2&status=503")
    assert (status, body["count"], body["status"]) == (200, 2, 503)

    for _ in range(2):
        with pytest.raises(stripe.APIError) as failed:
            create_session(client)
        assert failed.value.http_status == 503
    assert client.v1.checkout.sessions.list().data == []
    create_session(client)  # the third request runs
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_the_failure_control_refuses_a_bad_count_or_status_and_can_be_cancelled(client, emulator):
    for body in ("count=-1", "count=x", "", "count=1&status=200", "count=1&status=600"):
        status, refused, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body=body)
        assert status == 400, body
        assert refused["error"]["param"] in ("count", "status"), body
    raw_api_request(emulator, "POST", "/_emulator/failures", body="count=3")
    status, body, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body="count=0")
    assert (status, body["count"]) == (200, 0)
    create_session(client)


def test_a_refund_retried_after_an_injected_failure_happens_once(client, emulator, fast_sdk_retries):
    payment_intent = pay_for_session(client, emulator)
    emulator.fail_next_requests(1, status=503)

    refund = retrying_client(emulator, max_network_retries=1).v1.refunds.create(
        params={"payment_intent": payment_intent}
    )

    assert [listed.id for listed in client.v1.refunds.list().data] == [refund.id]


def test_an_injected_failure_leaves_the_idempotency_key_unused(emulator):
    form = urllib.parse.urlencode({"payment_intent": "pi_test_unknown"})
    headers = {"Idempotency-Key": "key-1"}
    emulator.fail_next_requests(1, status=503)

    failed = raw_api_request(emulator, "POST", "/v1/refunds", body=form, headers=headers)
    retried = raw_api_request(emulator, "POST", "/v1/refunds", body=form, headers=headers)

    status, body, response_headers = failed
    assert (status, body["error"]["type"], response_headers["Stripe-Should-Retry"]) == (503, "api_error", "true")
    # The retry ran for real (a 404 for the unknown PaymentIntent), not a replay of the 503.
    assert (retried[0], retried[1]["error"]["code"]) == (404, "resource_missing")
    assert "Idempotent-Replayed" not in retried[2]


def test_delayed_requests_are_slow_but_succeed(client, emulator):
    emulator.delay_next_requests(1, 0.3)

    started = time.monotonic()
    client.v1.checkout.sessions.list()
    slow = time.monotonic() - started
    started = time.monotonic()
    client.v1.checkout.sessions.list()
    fast = time.monotonic() - started

    assert slow >= 0.3 > fast
