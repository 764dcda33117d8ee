"""The Payments port: the fake, the real StripePayments (official SDK) on the local emulator, and the
same adapter on real Stripe in test mode when STRIPE_TEST_SECRET_KEY is set (skipped otherwise)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters.stripe_payments import StripePayments, stripe_client
from chalicelib.domain.errors import InvalidWebhook, PaymentServiceUnavailable
from chalicelib.domain.money import Money
from chalicelib.domain.references import new_order_reference
from devstack.stripe_emulator import sign_webhook_payload
from tests.conftest import TEST_SECRETS
from tests.fakes import FakePayments
from tests.integration.test_contracts import an_order

SECRET = TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]


@pytest.fixture(params=["fake", "stripe-sdk-on-emulator", "stripe-sdk-on-real-stripe-test-mode"])
def payments(request):
    if request.param == "fake":
        return FakePayments(SECRET)
    if request.param == "stripe-sdk-on-real-stripe-test-mode":
        return StripePayments(stripe_client(real_stripe_test_key(), None), SECRET)
    emulator = request.getfixturevalue("stripe_emulator")
    return StripePayments(stripe_client(TEST_SECRETS["STRIPE_SECRET_KEY"], emulator.base_url), SECRET)


def real_stripe_test_key() -> str:
    key = os.environ.get("STRIPE_TEST_SECRET_KEY", "")
    if not key:
        pytest.skip("real Stripe: set STRIPE_TEST_SECRET_KEY to a test-mode key (sk_test_...) to run this contract")
    if not key.startswith("sk_test_"):
        pytest.fail("STRIPE_TEST_SECRET_KEY must be a test-mode key (sk_test_...); live keys are never used by tests")
    return key


def completed_event(reference: str) -> bytes:
    return json.dumps(
        {
            "id": "evt_contract",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "object": "checkout.session",
                    "id": "cs_1",
                    "client_reference_id": reference,
                    "amount_total": 895,
                    "currency": "gbp",
                    "payment_status": "paid",
                }
            },
        }
    ).encode()


@pytest.fixture
def stripe_now(request, clock):
    """The time the Stripe under test reads: the test's clock (the emulator's and the fake's), or the
    real time for real Stripe. A session's expiry is counted from it, never from the machine's clock
    against the emulator's (which failed every morning: noon + 30 minutes was beyond now + 1 hour)."""
    callspec = getattr(request.node, "callspec", None)
    if callspec and callspec.params.get("payments") == "stripe-sdk-on-real-stripe-test-mode":
        return datetime.now(timezone.utc)
    return clock()


def start(payments, order, now):
    return payments.start_checkout(
        order,
        "http://testserver/ok?s={CHECKOUT_SESSION_ID}",
        "http://testserver/back",
        now + timedelta(hours=1),
    )


def test_starting_checkout_twice_for_one_order_gives_one_session(payments, stripe_now):
    order = an_order(new_order_reference())
    first, second = start(payments, order, stripe_now), start(payments, order, stripe_now)
    assert first == second and first.url


def test_different_orders_get_different_sessions(payments, stripe_now):
    assert (
        start(payments, an_order(new_order_reference()), stripe_now).id
        != start(payments, an_order(new_order_reference()), stripe_now).id
    )


def test_a_signed_event_is_read(payments):
    body = completed_event("TK-AAAAA-00001")
    event = payments.parse_webhook(body, sign_webhook_payload(body, SECRET, int(time.time())))
    assert (event.id, event.type, event.order_reference, event.payment_status, event.paid) == (
        "evt_contract",
        "checkout.session.completed",
        "TK-AAAAA-00001",
        "paid",
        Money(895, "gbp"),
    )


@pytest.mark.parametrize("header", ["", "t=1,v1=00", "nonsense"])
def test_an_unsigned_or_badly_signed_event_is_refused(payments, header):
    with pytest.raises(InvalidWebhook):
        payments.parse_webhook(completed_event("TK-AAAAA-00001"), header)


def test_the_session_carries_the_order_reference_and_price(stripe_emulator, stripe_now):
    payments = StripePayments(stripe_client(TEST_SECRETS["STRIPE_SECRET_KEY"], stripe_emulator.base_url), SECRET)
    session = start(payments, an_order("TK-AAAAA-00009"), stripe_now)
    stripe_emulator.pay(session.id)
    [event] = stripe_emulator.events()
    paid = event["data"]["object"]
    assert (paid["client_reference_id"], paid["amount_total"], paid["currency"]) == ("TK-AAAAA-00009", 895, "gbp")
    assert paid["metadata"] == {"order_reference": "TK-AAAAA-00009"}


def test_stripe_out_of_reach_is_reported_as_unavailable(stripe_now):
    from tests.conftest import free_port

    payments = StripePayments(stripe_client("sk_test_x", f"http://127.0.0.1:{free_port()}"), SECRET)
    with pytest.raises(PaymentServiceUnavailable):
        start(payments, an_order(), stripe_now)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"id": "evt_1", "data": []}',
        b'{"id": "evt_1", "data": {"object": 5}}',
        b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": '
        b'{"object": "checkout.session", "amount_total": "895", "currency": 1}}}',
    ],
)
def test_oddly_shaped_but_signed_events_are_refused_or_inert(payments, body):
    try:
        event = payments.parse_webhook(body, sign_webhook_payload(body, SECRET, int(time.time())))
    except InvalidWebhook:
        return
    assert event.paid is None and event.order_reference is None


def test_a_session_is_read_back_open_and_can_be_closed_once(payments, stripe_now):
    reference = new_order_reference()
    session = start(payments, an_order(reference), stripe_now)
    facts = payments.read_checkout(session.id)
    assert (facts.order_reference, facts.payment_status, facts.paid) == (reference, "unpaid", Money(895, "gbp"))
    assert facts.type == "checkout.session.open"
    payments.expire_checkout(session.id)
    payments.expire_checkout(session.id)  # already closed: no error
    assert payments.read_checkout(session.id).type == "checkout.session.expired"


def test_a_slow_stripe_is_retried_then_reported_as_unavailable(stripe_emulator, stripe_now):
    payments = StripePayments(stripe_client("sk_test_x", stripe_emulator.base_url, timeout=(1, 0.3)), SECRET)
    stripe_emulator.delay_next_requests(1, 1.0)
    assert start(payments, an_order(new_order_reference()), stripe_now).url  # one slow answer: the retry succeeds
    stripe_emulator.delay_next_requests(3, 1.0)
    with pytest.raises(PaymentServiceUnavailable):
        start(payments, an_order(new_order_reference()), stripe_now)


def test_a_signed_event_nested_deeper_than_stripe_ever_nests_is_refused(payments):
    body = b'{"id": "evt_deep", "data": {"object": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    with pytest.raises(InvalidWebhook):
        payments.parse_webhook(body, sign_webhook_payload(body, SECRET, int(time.time())))
