"""Use cases against the in-memory fakes: fast, and the same outcomes the real adapters must give."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib import services
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.errors import (
    CertificateAlreadyClaimed,
    CertificateNotAccepted,
    InvalidInput,
    InvalidWebhook,
    PaymentServiceUnavailable,
    QueueUnavailable,
    RefundRefused,
)
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.domain.references import new_order_reference
from chalicelib.services.manufacturer import dispatch_fulfilment, relay_unsent
from chalicelib.services.privacy import erase_order
from tests.builders import NOW, delivery_form, fake_dependencies, load_register, register_row


@pytest.fixture
def deps():
    deps = fake_dependencies()
    load_register(
        deps,
        register_row("FA/1001", "SW1A 2AA"),
        register_row("FA/1002", "SW1A 2AA", free_kit="yes"),
        register_row("FA/1003", "SW1A 2AA", status="revoked"),
    )
    return deps


def order(deps, reference="FA/1001", order_reference=None, checked=None):
    checked = checked or services.check_certificate(reference, "sw1a2aa", deps)
    return services.confirm_order(
        checked, parse_delivery_details(delivery_form()), order_reference or new_order_reference(), deps
    )


def pay(deps, placed, event_id="evt_1", **overrides):
    session = deps.payments.pay(deps.orders.get(placed.reference).checkout_session_id)
    body, signature = deps.payments.completed_event(
        placed.reference, event_id, payment_intent=session["payment_intent"], **overrides
    )
    return services.handle_stripe_webhook(body, signature, deps)


def test_a_free_order_is_confirmed_and_released_to_the_manufacturer(deps):
    placed = order(deps, "fa 1002")
    assert placed.checkout_url is None
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.payment, stored.fulfilment) == (
        OrderState.CONFIRMED,
        PaymentState.NOT_REQUIRED,
        FulfilmentState.RELEASED,
    )
    assert [m["order_reference"] for m in deps.fulfilment_queue.receive_all()] == [placed.reference]


def test_a_paid_order_waits_for_payment_with_nothing_sent(deps):
    placed = order(deps)
    assert placed.checkout_url.startswith("https://pay.example/")
    assert deps.orders.get(placed.reference).payment is PaymentState.AWAITING
    assert deps.fulfilment_queue.receive_all() == []


def test_the_webhook_delivered_twice_pays_once_and_sends_one_message(deps):
    placed = order(deps)
    assert pay(deps, placed) == "paid"
    assert pay(deps, placed) == "paid"
    stored = deps.orders.get(placed.reference)
    assert (stored.payment, stored.fulfilment) == (PaymentState.PAID, FulfilmentState.RELEASED)
    assert len(deps.fulfilment_queue.receive_all()) == 1
    assert [e.change for e in stored.history].count("paid") == 1


def test_an_unpaid_completed_session_shows_processing_and_does_not_confirm(deps):
    placed = order(deps)
    assert pay(deps, placed, payment_status="unpaid") == "payment processing"
    stored = deps.orders.get(placed.reference)
    assert stored.payment is PaymentState.AWAITING and stored.payment_processing


def test_a_payment_of_the_wrong_amount_is_flagged_not_fulfilled(deps):
    placed = order(deps)
    assert pay(deps, placed, amount=1).startswith("not fulfilled")
    assert deps.orders.get(placed.reference).payment_flag == "amount_mismatch:1 gbp"
    assert deps.fulfilment_queue.receive_all() == []


def test_a_bad_signature_is_rejected_and_changes_nothing(deps):
    placed = order(deps)
    body, _ = deps.payments.completed_event(placed.reference)
    with pytest.raises(InvalidWebhook):
        services.handle_stripe_webhook(body, "t=1,v1=00", deps)
    assert deps.orders.get(placed.reference).payment is PaymentState.AWAITING


def test_unknown_event_types_are_ignored(deps):
    body, signature = deps.payments.event("customer.created", {"object": "customer", "id": "cus_1"})
    assert services.handle_stripe_webhook(body, signature, deps) == "ignored"


def test_a_second_order_on_the_same_certificate_is_refused(deps):
    order(deps, "FA/1002")
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1002", "SW1A 2AA", deps)


def test_a_doubled_confirmation_continues_the_same_order_and_session(deps):
    reference, checked = new_order_reference(), services.check_certificate("FA/1001", "SW1A 2AA", deps)
    first = order(deps, order_reference=reference, checked=checked)
    second = order(deps, order_reference=reference, checked=checked)
    assert first == second and len(deps.orders.orders) == 1 and len(deps.payments.sessions) == 1


def test_another_journey_on_a_claimed_certificate_is_refused_at_the_claim(deps):
    checked = services.check_certificate("FA/1001", "SW1A 2AA", deps)
    details = parse_delivery_details(delivery_form())
    services.confirm_order(checked, details, new_order_reference(), deps)
    with pytest.raises(CertificateAlreadyClaimed):
        services.confirm_order(checked, details, new_order_reference(), deps)
    assert len(deps.orders.orders) == 1


def test_refused_certificates_and_bad_input(deps):
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1003", "SW1A 2AA", deps)
    with pytest.raises(InvalidInput) as refused:
        services.check_certificate("", "nowhere", deps)
    assert set(refused.value.errors) == {"reference", "postcode"}


def test_stripe_down_leaves_nothing_holding_the_certificate(deps):
    deps.payments.unavailable = True
    reference, checked = new_order_reference(), services.check_certificate("FA/1001", "SW1A 2AA", deps)
    with pytest.raises(PaymentServiceUnavailable):
        order(deps, order_reference=reference, checked=checked)
    assert deps.orders.get(reference).state is OrderState.CANCELLED
    deps.payments.unavailable = False
    retried = order(deps, order_reference=reference, checked=checked)  # the same journey tries again
    assert retried.reference != reference and retried.checkout_url


def test_returning_after_the_session_lapsed_gets_a_new_session_for_the_same_order(deps):
    reference, checked = new_order_reference(), services.check_certificate("FA/1001", "SW1A 2AA", deps)
    first = order(deps, order_reference=reference, checked=checked)
    deps.clock.set(NOW + timedelta(minutes=61))
    again = order(deps, order_reference=reference, checked=checked)
    assert again.reference == reference and again.checkout_url != first.checkout_url
    stored = deps.orders.get(reference)
    assert stored.checkout_attempt == 2
    assert deps.payments.session(first.checkout_url.rsplit("/", 1)[-1])["status"] == "expired"


def test_expiry_gives_the_claim_back_and_a_late_payment_is_still_honoured(deps):
    placed = order(deps)
    session_id = deps.orders.get(placed.reference).checkout_session_id
    body, signature = deps.payments.event(
        "checkout.session.expired",
        {
            "object": "checkout.session",
            "id": session_id,
            "client_reference_id": placed.reference,
            "amount_total": 895,
            "currency": "gbp",
            "payment_status": "unpaid",
        },
        "evt_exp",
    )
    assert services.handle_stripe_webhook(body, signature, deps) == "checkout expired"
    assert deps.orders.get(placed.reference).state is OrderState.EXPIRED
    assert deps.orders.claims[deps.orders.get(placed.reference).certificate_key] == 0
    assert pay(deps, placed, "evt_late") == "paid"
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.payment, stored.fulfilment) == (
        OrderState.CONFIRMED,
        PaymentState.PAID,
        FulfilmentState.RELEASED,
    )
    assert deps.orders.claims[stored.certificate_key] == 1


class FailingOnceQueue:
    """A queue whose first send fails, as SQS can."""

    def __init__(self, queue):
        self.queue, self.failed = queue, False

    def send(self, message):
        if not self.failed:
            self.failed = True
            raise QueueUnavailable("queue unavailable")
        self.queue.send(message)


def test_a_redelivered_webhook_releases_an_order_whose_first_send_failed(deps):
    placed = order(deps)
    real_queue = deps.fulfilment_queue
    deps.fulfilment_queue = FailingOnceQueue(real_queue)
    with pytest.raises(QueueUnavailable):
        pay(deps, placed)
    assert deps.orders.get(placed.reference).fulfilment is FulfilmentState.NOT_RELEASED
    assert pay(deps, placed) == "paid"
    assert pay(deps, placed) == "paid"
    assert [m["order_reference"] for m in real_queue.receive_all()] == [placed.reference]


def test_a_free_order_stands_when_the_queue_is_down_and_waits_for_the_relay(deps):
    real_queue = deps.fulfilment_queue
    deps.fulfilment_queue = FailingOnceQueue(real_queue)
    placed = order(deps, "FA/1002")
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.fulfilment) == (OrderState.CONFIRMED, FulfilmentState.NOT_RELEASED)
    assert stored.awaits_release and real_queue.receive_all() == []


def test_the_return_from_checkout_fulfils_before_the_webhook_and_the_webhook_then_changes_nothing(deps):
    placed = order(deps)
    session_id = deps.orders.get(placed.reference).checkout_session_id
    session = deps.payments.pay(session_id)
    returned = services.fulfil_on_return(placed.reference, session_id, deps).order
    assert returned.payment is PaymentState.PAID and len(deps.fulfilment_queue.receive_all()) == 1
    body, signature = deps.payments.completed_event(placed.reference, "evt_2", payment_intent=session["payment_intent"])
    assert services.handle_stripe_webhook(body, signature, deps) == "paid"
    assert len(deps.fulfilment_queue.receive_all()) == 1


def test_an_operator_refund_is_idempotent_and_a_full_refund_before_dispatch_cancels(deps):
    placed = order(deps)
    pay(deps, placed)
    partial = services.refund_order(placed.reference, 300, "kit damaged", "alice", deps)
    again = services.refund_order(placed.reference, 300, "kit damaged", "alice", deps)
    assert partial.payment is PaymentState.PARTIALLY_REFUNDED and again.refunded_pence == 300
    full = services.refund_order(placed.reference, None, "holder cancelled", "alice", deps)
    assert (full.payment, full.fulfilment, full.refunded_pence) == (
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
        895,
    )
    assert full.history[-1].actor == "operator:alice" and "holder cancelled" in full.history[-1].change
    assert services.refund_order(placed.reference, None, "holder cancelled", "alice", deps) == full
    with pytest.raises(RefundRefused):
        services.refund_order(placed.reference, 1, "another", "alice", deps)


def test_refunds_are_refused_for_unpaid_orders_and_over_the_remainder(deps):
    placed = order(deps)
    with pytest.raises(RefundRefused):
        services.refund_order(placed.reference, None, "x", "alice", deps)
    pay(deps, placed)
    with pytest.raises(RefundRefused):
        services.refund_order(placed.reference, 896, "x", "alice", deps)


def test_the_sweep_gives_back_claims_whose_hold_ran_out_and_honours_payments_made_meanwhile(deps):
    lapsed, paid_meanwhile = order(deps), order(deps, "FA/1002")
    load_register(deps, register_row("FA/1004", "SW1A 2AA"))
    paid_meanwhile = order(deps, "FA/1004")
    deps.payments.pay(deps.orders.get(paid_meanwhile.reference).checkout_session_id)
    assert services.sweep_lapsed_holds(deps) == 0  # nothing has run out yet
    deps.clock.set(NOW + timedelta(minutes=76))
    assert services.sweep_lapsed_holds(deps) == 1
    assert deps.orders.get(lapsed.reference).state is OrderState.EXPIRED
    assert deps.orders.get(paid_meanwhile.reference).payment is PaymentState.PAID
    assert services.sweep_lapsed_holds(deps) == 0


# -- Erasure ends an order not yet dispatched; no message for an erased recipient is ever sent -----


def queued_for(deps, reference) -> list[dict]:
    return [m for m in deps.fulfilment_queue.receive_all() if m["order_reference"] == reference]


def test_an_order_erased_while_awaiting_payment_is_cancelled_and_its_checkout_closed(deps):
    placed = order(deps)
    session_id = deps.orders.get(placed.reference).checkout_session_id
    erased = erase_order(placed.reference, "holder asked", "alice", deps)
    assert (erased.state, erased.payment, erased.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.NOT_TAKEN,
        FulfilmentState.CANCELLED,
    )
    assert deps.payments.session(session_id)["status"] == "expired"
    assert sum(deps.register.claims.values()) == 0  # the certificate may order again


def test_a_payment_after_erasure_is_refunded_and_no_message_is_ever_sent(deps):
    placed = order(deps)
    session = deps.payments.pay(deps.orders.get(placed.reference).checkout_session_id)  # paid on Stripe's page
    erase_order(placed.reference, "holder asked", "alice", deps)  # meanwhile, the operator erases
    body, signature = deps.payments.completed_event(placed.reference, payment_intent=session["payment_intent"])
    services.handle_stripe_webhook(body, signature, deps)
    services.handle_stripe_webhook(body, signature, deps)  # Stripe delivers it twice
    relay_unsent(deps)
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.payment, stored.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
    )
    assert deps.payments.money_view(session["payment_intent"]).amount_refunded == 895
    assert len(deps.payments.refund_keys) == 1
    assert queued_for(deps, placed.reference) == []
    assert sum(deps.register.claims.values()) == 0


def test_erasing_a_released_paid_order_refunds_it_and_puts_it_on_the_kit_makers_cancellations(deps):
    placed = order(deps)
    pay(deps, placed)
    stored = deps.orders.get(placed.reference)
    assert [o.message.fulfilment_id for o in deps.fulfilments.open_fulfilments(None, 10).items] == [
        stored.fulfilment_id
    ]
    erase_order(placed.reference, "holder asked", "alice", deps)
    erased = erase_order(placed.reference, "holder asked", "alice", deps)  # twice: nothing more
    assert deps.fulfilments.open_fulfilments(None, 10).items == []
    assert [c.fulfilment_id for c in deps.fulfilments.cancellations(None, 10).items] == [stored.fulfilment_id]
    assert (erased.payment, erased.refunded_pence, len(deps.payments.refund_keys)) == (PaymentState.REFUNDED, 895, 1)
    assert [line.change for line in erased.history].count(
        "personal data erased (holder asked); cancelled before dispatch, refunded"
    ) == 1


def test_a_refund_stripe_could_not_take_is_made_when_the_erasure_is_asked_again(deps):
    placed = order(deps)
    pay(deps, placed)
    deps.payments.unavailable = True
    with pytest.raises(PaymentServiceUnavailable):
        erase_order(placed.reference, "holder asked", "alice", deps)
    stuck = deps.orders.get(placed.reference)
    assert stuck.erased_at is not None and stuck.fulfilment is FulfilmentState.CANCELLED
    assert stuck.payment is PaymentState.PAID
    deps.payments.unavailable = False
    again = erase_order(placed.reference, "holder asked", "alice", deps)
    assert (again.payment, again.refunded_pence) == (PaymentState.REFUNDED, 895)


def test_a_dispatched_order_is_erased_as_it_always_was(deps):
    placed = order(deps, "FA/1002")
    report = {"kit_code": "K1", "carrier": "Royal Mail", "tracking_reference": "T1", "dispatched_at": NOW.isoformat()}
    dispatch_fulfilment(deps.orders.get(placed.reference).fulfilment_id, report, "k", deps)
    erased = erase_order(placed.reference, "holder asked", "alice", deps)
    assert (erased.state, erased.fulfilment, erased.delivery.postcode) == (
        OrderState.CONFIRMED,
        FulfilmentState.DISPATCHED,
        "",
    )
    assert deps.fulfilments.cancellations(None, 10).items == []


def test_a_message_that_breaks_its_schema_is_not_sent_but_counted_and_the_relay_lets_it_be(deps):
    placed = order(deps, "FA/1002")
    stored = deps.orders.get(placed.reference)
    # an order erased before erasure ended orders (as the issue observed): confirmed, unreleased, no address
    legacy = dataclasses.replace(
        stored,
        fulfilment=FulfilmentState.NOT_RELEASED,
        released_at=None,
        delivery=dataclasses.replace(stored.delivery, full_name="[erased]", postcode="", town="[erased]"),
    )
    deps.orders.orders[placed.reference] = legacy
    deps.fulfilment_queue.messages.clear()
    deps.fulfilment_queue._seen.clear()
    relay_unsent(deps)
    relay_unsent(deps)
    withheld = deps.orders.get(placed.reference)
    assert deps.fulfilment_queue.receive_all() == []
    assert withheld.fulfilment is FulfilmentState.REJECTED
    assert withheld.rejection_reason == (
        "not sent: the fulfilment message breaks its schema (recipient.postcode: pattern)"
    )
    assert "[erased]" not in withheld.rejection_reason
    assert deps.fulfilments.relay_pending() == []
    assert sum(r.get("FulfilmentMessagesRefused", 0) for r in deps.metrics.reports) == 1


def test_the_return_from_checkout_with_stripe_down_leaves_the_order_and_says_stripe_did_not_answer(deps):
    placed = order(deps)
    session_id = deps.orders.get(placed.reference).checkout_session_id
    deps.payments.pay(session_id)
    deps.payments.unavailable = True
    returned = services.fulfil_on_return(placed.reference, session_id, deps)
    assert returned.stripe_answered is False
    assert returned.order == deps.orders.get(placed.reference)
    assert returned.order.payment is PaymentState.AWAITING


def test_a_bank_payment_that_confirms_after_the_erasure_is_refunded_not_fulfilled(deps):
    placed = order(deps)
    session = deps.payments.pay(deps.orders.get(placed.reference).checkout_session_id, paid=False)
    body, signature = deps.payments.completed_event(
        placed.reference, "evt_1", payment_status="unpaid", payment_intent=session["payment_intent"]
    )
    services.handle_stripe_webhook(body, signature, deps)
    assert deps.orders.get(placed.reference).payment_processing
    erase_order(placed.reference, "holder asked", "alice", deps)
    session["payment_status"] = "paid"  # the bank confirms
    succeeded = {**session, "object": "checkout.session"}
    services.handle_stripe_webhook(
        *deps.payments.event("checkout.session.async_payment_succeeded", succeeded, "evt_2"), deps
    )
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.payment, stored.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
    )
    assert queued_for(deps, placed.reference) == []


def test_a_payment_for_an_order_erased_before_erasure_ended_orders_is_refunded_not_fulfilled(deps):
    """Data from before this rule: an order erased while awaiting payment and left placed."""
    placed = order(deps)
    stored = deps.orders.get(placed.reference)
    erased = dataclasses.replace(
        stored, erased_at=NOW, delivery=dataclasses.replace(stored.delivery, full_name="[erased]", postcode="")
    )
    deps.orders.orders[placed.reference] = erased
    pay(deps, placed)
    after = deps.orders.get(placed.reference)
    assert (after.state, after.payment, after.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
    )
    assert queued_for(deps, placed.reference) == []
