"""Payments that never lose, double-take or mis-state a pound: Stripe's events through the real
webhook route, from the local emulator via the official SDK, on DynamoDB and SQS (moto)."""

from __future__ import annotations

import dataclasses
import json
import re
import threading

import pytest
from click.testing import CliRunner

from chalicelib.domain.errors import QueueUnavailable
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from devstack.stripe_emulator import sign_webhook_payload
from ops.cli import main as cli
from tests.builders import delivery_form, load_register, register_row
from tests.conftest import TEST_SECRETS
from tests.journeys.browser import Browser, deliver_webhook, location_path
from tests.journeys.test_order_journey import queued_messages

SECRET = TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]


@pytest.fixture
def holder(deps):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    return deps


def checkout(client, reference: str = "FA/1001") -> tuple[Browser, str]:
    """A holder at Stripe's page: (their browser, the session id)."""
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    to_stripe = browser.post("/order/confirm", {"confirm": "yes"})
    assert to_stripe.status_code == 303, to_stripe.body
    return browser, to_stripe.headers["Location"].rsplit("/", 1)[-1]


def stripe_sessions(emulator) -> list:
    import stripe

    sdk = stripe.StripeClient(TEST_SECRETS["STRIPE_SECRET_KEY"], base_addresses={"api": emulator.base_url})
    return list(sdk.v1.checkout.sessions.list().auto_paging_iter())


def events(emulator, kind: str) -> list[dict]:
    return [e for e in emulator.events() if e["type"] == kind]


def deliver(client, event: dict, status: int = 200):
    response = deliver_webhook(client, event, SECRET)
    assert response.status_code == status, response.body
    return response


def the_order(deps, browser):
    cookie_ref = re.findall(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}", browser.get("/order/confirmation").body.decode())
    return deps.orders.get(cookie_ref[0])


def paid_order(client, deps, emulator, reference: str = "FA/1001"):
    browser, session_id = checkout(client, reference)
    emulator.pay(session_id)
    deliver(client, events(emulator, "checkout.session.completed")[-1])
    order = the_order(deps, browser)
    assert order.payment is PaymentState.PAID
    return browser, order


def test_every_event_delivered_twice_and_in_reverse_order_ends_in_the_same_state(
    client, holder, stripe_emulator, settings
):
    browser, order = paid_order(client, holder, stripe_emulator)
    stripe_emulator.refund(order.payment_intent_id, 300)
    stripe_emulator.refund(order.payment_intent_id, 200)
    later = [e for e in stripe_emulator.events() if e["type"] != "checkout.session.completed"]
    for event in reversed(later):
        deliver(client, event)
        deliver(client, event)
    stored = holder.orders.get(order.reference)
    assert (stored.payment, stored.refunded_pence) == (PaymentState.PARTIALLY_REFUNDED, 500)
    assert len(queued_messages(settings)) == 1
    assert len(stored.processed_events) == 1 + len(later)


def test_an_expired_session_then_its_late_completion_is_honoured(client, holder, stripe_emulator, settings):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    [completed] = events(stripe_emulator, "checkout.session.completed")
    expired = {
        **completed,
        "id": "evt_expired_late",
        "type": "checkout.session.expired",
        "data": {"object": {**completed["data"]["object"], "status": "expired", "payment_status": "unpaid"}},
    }
    deliver(client, expired)
    order = the_order(holder, browser)
    assert order.state is OrderState.EXPIRED
    assert holder.register.find(order.certificate_key).kits_claimed == 0
    deliver(client, completed)
    honoured = holder.orders.get(order.reference)
    assert (honoured.state, honoured.payment, honoured.fulfilment) == (
        OrderState.CONFIRMED,
        PaymentState.PAID,
        FulfilmentState.RELEASED,
    )
    assert holder.register.find(order.certificate_key).kits_claimed == 1
    assert [m["order_reference"] for m in queued_messages(settings)] == [order.reference]


def test_a_late_expiry_never_unpays(client, holder, stripe_emulator):
    browser, order = paid_order(client, holder, stripe_emulator)
    [completed] = events(stripe_emulator, "checkout.session.completed")
    expired = {**completed, "id": "evt_expired", "type": "checkout.session.expired"}
    deliver(client, expired)
    assert holder.orders.get(order.reference).payment is PaymentState.PAID


def test_expiry_gives_the_certificate_back_so_the_holder_can_order_again(client, holder, stripe_emulator):
    browser, session_id = checkout(client)
    stripe_emulator.expire(session_id)
    [expired] = events(stripe_emulator, "checkout.session.expired")
    deliver(client, expired)
    page = browser.get("/order/confirmation").body.decode()
    assert "The time to pay ran out" in page
    again = browser.post("/order/confirm", {"confirm": "yes"})
    assert again.headers["Location"].rsplit("/", 1)[-1] != session_id


def test_a_replayed_event_older_than_the_signature_tolerance_is_rejected(client, holder, stripe_emulator):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    [completed] = events(stripe_emulator, "checkout.session.completed")
    body = json.dumps(completed).encode()
    old = sign_webhook_payload(body, SECRET, int(stripe_emulator._clock()) - 301)
    response = deliver_webhook(client, completed, SECRET, signature=old)
    assert response.status_code == 400
    assert the_order(holder, browser).payment is PaymentState.AWAITING


def test_an_amount_mismatch_is_flagged_not_fulfilled(client, holder, stripe_emulator, settings):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    [completed] = events(stripe_emulator, "checkout.session.completed")
    wrong = {**completed, "data": {"object": {**completed["data"]["object"], "amount_total": 95}}}
    deliver(client, wrong)
    order = the_order(holder, browser)
    assert order.payment is PaymentState.AWAITING and order.payment_flag == "amount_mismatch:95 gbp"
    assert queued_messages(settings) == []


def test_concurrent_confirmation_clicks_give_one_session(client, holder, stripe_emulator):
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    locations, barrier = [], threading.Barrier(4)

    def click():
        barrier.wait()
        response = browser.client.http.post(
            "/order/confirm",
            body=f"confirm=yes&csrf_token={browser.csrf}",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser.cookie},
        )
        locations.append(response.headers.get("Location"))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(locations) == 4 and len(set(locations)) == 1 and locations[0].startswith(stripe_emulator.base_url)
    assert len(stripe_sessions(stripe_emulator)) == 1


def test_refund_before_dispatch_cancels_the_kit_and_after_dispatch_does_not(client, holder, stripe_emulator):
    _, before = paid_order(client, holder, stripe_emulator)
    stripe_emulator.refund(before.payment_intent_id)
    for event in events(stripe_emulator, "refund.created") + events(stripe_emulator, "charge.refunded"):
        deliver(client, event)
    cancelled = holder.orders.get(before.reference)
    assert (cancelled.payment, cancelled.fulfilment, cancelled.state) == (
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
        OrderState.CANCELLED,
    )

    load_register(holder, register_row("FA/2002", "SW1A 2AA"))
    _, after = paid_order(client, holder, stripe_emulator, "FA/2002")
    holder.orders.save(after, dataclasses.replace(after, fulfilment=FulfilmentState.DISPATCHED))
    stripe_emulator.refund(after.payment_intent_id)
    deliver(client, events(stripe_emulator, "charge.refunded")[-1])
    kept = holder.orders.get(after.reference)
    assert (kept.payment, kept.fulfilment, kept.state) == (
        PaymentState.REFUNDED,
        FulfilmentState.DISPATCHED,
        OrderState.CONFIRMED,
    )


def test_an_operator_refund_and_a_dashboard_refund_end_in_the_same_recorded_state(
    client, holder, stripe_emulator, environment, monkeypatch
):
    _, order = paid_order(client, holder, stripe_emulator)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ran = CliRunner().invoke(
        cli, ["refund", order.reference, "--amount", "300", "--reason", "box crushed", "--operator", "alice"]
    )
    assert ran.exit_code == 0, ran.output
    assert "partially_refunded, refunded 300 pence" in ran.output
    again = CliRunner().invoke(
        cli, ["refund", order.reference, "--amount", "300", "--reason", "box crushed", "--operator", "alice"]
    )
    assert again.exit_code == 0 and "refunded 300 pence" in again.output
    by_operator = holder.orders.get(order.reference)
    for event in events(stripe_emulator, "refund.created") + events(stripe_emulator, "charge.refunded"):
        deliver(client, event)  # Stripe's own news of the operator's refund changes nothing more
    assert holder.orders.get(order.reference).refunded_pence == 300

    load_register(holder, register_row("FA/2002", "SW1A 2AA"))
    _, dashboard = paid_order(client, holder, stripe_emulator, "FA/2002")
    stripe_emulator.refund(dashboard.payment_intent_id, 300)
    deliver(client, events(stripe_emulator, "charge.refunded")[-1])
    by_dashboard = holder.orders.get(dashboard.reference)
    assert (by_dashboard.payment, by_dashboard.refunded_pence, by_dashboard.fulfilment) == (
        by_operator.payment,
        by_operator.refunded_pence,
        by_operator.fulfilment,
    )
    shown = CliRunner().invoke(cli, ["order", "show", order.reference])
    assert "operator:alice" in shown.output and "box crushed" in shown.output and "Ada" not in shown.output


def test_a_dispute_marks_the_payment_until_it_is_won(client, holder, stripe_emulator):
    _, order = paid_order(client, holder, stripe_emulator)
    dispute = stripe_emulator.dispute(order.payment_intent_id)
    deliver(client, events(stripe_emulator, "charge.dispute.created")[-1])
    assert holder.orders.get(order.reference).payment is PaymentState.DISPUTED
    stripe_emulator.close_dispute(dispute["id"], won=True)
    deliver(client, events(stripe_emulator, "charge.dispute.closed")[-1])
    assert holder.orders.get(order.reference).payment is PaymentState.PAID


def test_a_bank_payment_shows_processing_then_completes(client, holder, stripe_emulator, settings):
    browser, session_id = checkout(client)
    stripe_emulator.pay_async(session_id)
    deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])
    assert "Your payment is being processed" in browser.get("/order/confirmation").body.decode()
    assert queued_messages(settings) == []
    stripe_emulator.settle_async(session_id, succeeded=True)
    deliver(client, events(stripe_emulator, "checkout.session.async_payment_succeeded")[-1])
    assert "Order complete" in browser.get("/order/confirmation").body.decode()
    assert len(queued_messages(settings)) == 1


def test_a_failed_bank_payment_offers_a_way_to_try_again(client, holder, stripe_emulator):
    browser, session_id = checkout(client)
    stripe_emulator.pay_async(session_id)
    deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])
    stripe_emulator.settle_async(session_id, succeeded=False)
    deliver(client, events(stripe_emulator, "checkout.session.async_payment_failed")[-1])
    page = browser.get("/order/confirmation").body.decode()
    assert "Your payment did not go through" in page and "Try again" in page
    retry = browser.post("/order/confirm", {"confirm": "yes"})
    assert retry.status_code == 303 and retry.headers["Location"].rsplit("/", 1)[-1] != session_id


def test_returning_from_checkout_before_the_webhook_fulfils_once(client, holder, stripe_emulator, settings):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    page = browser.get(f"/order/payment-complete?session_id={session_id}").body.decode()
    assert "Order complete" in page
    deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])
    assert len(queued_messages(settings)) == 1


def test_stripe_down_on_the_return_from_checkout_says_the_payment_is_being_checked_and_the_webhook_heals_it(
    client, holder, stripe_emulator, settings
):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    stripe_emulator.fail_next_requests(10, status=500)  # more than the SDK's retries
    page = browser.get(f"/order/payment-complete?session_id={session_id}")
    stripe_emulator.fail_next_requests(0)
    text = page.body.decode()
    assert page.status_code == 200
    assert "We are checking your payment" in text
    assert "Nothing will be taken twice" in text and 'href="/status"' in text
    assert "not been charged" not in text and "not been placed" not in text
    assert the_order(holder, browser).payment is PaymentState.AWAITING  # unknown here: left as it was
    deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])  # the webhook heals it
    assert "Order complete" in browser.get(f"/order/payment-complete?session_id={session_id}").body.decode()
    assert len(queued_messages(settings)) == 1


def test_the_return_from_checkout_with_stripe_answering_is_as_before(client, holder, stripe_emulator):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    text = browser.get(f"/order/payment-complete?session_id={session_id}").body.decode()
    assert "Order complete" in text and "checking your payment" not in text


def test_stripe_returning_500_then_success_still_gives_one_session(client, holder, stripe_emulator):
    stripe_emulator.fail_next_requests(1, status=500)
    browser, session_id = checkout(client)
    creates = [r for r in stripe_emulator.api_requests() if r == ("POST", "/v1/checkout/sessions")]
    assert len(creates) == 2  # the SDK retried the 500
    assert [s.id for s in stripe_sessions(stripe_emulator)] == [session_id]


def test_stripe_down_shows_try_again_and_holds_nothing(client, holder, stripe_emulator):
    stripe_emulator.fail_next_requests(10, status=500)
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    page = browser.post("/order/confirm", {"confirm": "yes"})
    assert page.status_code == 503 and "Try again" in page.body.decode()
    assert holder.register.find(holder.keys.reference_key("FA1001")).kits_claimed == 0
    stripe_emulator.fail_next_requests(0)
    assert location_path(browser.post("/order/confirm", {"confirm": "yes"})).startswith("/c/pay/")


class BrokenOnce:
    def __init__(self, queue):
        self.queue, self.broken = queue, True

    def send(self, message):
        if self.broken:
            self.broken = False
            raise QueueUnavailable("down")
        self.queue.send(message)


def test_a_webhook_that_fails_inside_tracekit_returns_5xx_and_the_retry_succeeds(
    client, holder, stripe_emulator, settings
):
    browser, session_id = checkout(client)
    stripe_emulator.pay(session_id)
    [completed] = events(stripe_emulator, "checkout.session.completed")
    holder.fulfilment_queue = BrokenOnce(holder.fulfilment_queue)
    assert deliver_webhook(client, completed, SECRET).status_code >= 500
    deliver(client, completed)
    assert len(queued_messages(settings)) == 1
    assert the_order(holder, browser).fulfilment is FulfilmentState.RELEASED


def test_the_sweep_frees_a_lapsed_hold_when_the_expiry_webhook_never_came(client, holder, stripe_emulator):
    from datetime import timedelta

    browser, session_id = checkout(client)
    order = the_order(holder, browser)
    later = holder.clock() + timedelta(minutes=76)
    holder.clock.set(later)
    result = client.lambda_.invoke(
        "sweep_lapsed_holds",
        client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]),
    )
    assert result.payload is None
    assert holder.orders.get(order.reference).state is OrderState.EXPIRED
    assert holder.register.find(order.certificate_key).kits_claimed == 0
    assert [e["type"] for e in stripe_emulator.events()] == ["checkout.session.expired"]
