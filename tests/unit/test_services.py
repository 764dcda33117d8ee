"""Use cases against the in-memory fakes: fast, and the same outcomes the real adapters must give."""

from __future__ import annotations

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
)
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from tests.builders import delivery_form, fake_dependencies, load_register, register_row


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


def order(deps, reference="FA/1001"):
    checked = services.check_certificate(reference, "sw1a2aa", deps)
    return services.place_order(checked, parse_delivery_details(delivery_form()), deps)


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
    body, signature = deps.payments.completed_event(placed.reference)
    assert services.handle_stripe_webhook(body, signature, deps) == "recorded"
    assert services.handle_stripe_webhook(body, signature, deps) == "recorded"
    stored = deps.orders.get(placed.reference)
    assert (stored.payment, stored.fulfilment) == (PaymentState.PAID, FulfilmentState.RELEASED)
    assert len(deps.fulfilment_queue.receive_all()) == 1


def test_an_unpaid_completed_session_does_not_confirm_the_order(deps):
    placed = order(deps)
    body, signature = deps.payments.completed_event(placed.reference, payment_status="unpaid")
    assert services.handle_stripe_webhook(body, signature, deps) == "ignored"
    assert deps.orders.get(placed.reference).payment is PaymentState.AWAITING


def test_a_payment_of_the_wrong_amount_is_flagged_not_fulfilled(deps):
    placed = order(deps)
    body, signature = deps.payments.completed_event(placed.reference, amount=1)
    assert services.handle_stripe_webhook(body, signature, deps) == "flagged"
    assert deps.orders.get(placed.reference).payment is PaymentState.AWAITING
    assert deps.fulfilment_queue.receive_all() == []


def test_a_bad_signature_is_rejected_and_changes_nothing(deps):
    placed = order(deps)
    body, _ = deps.payments.completed_event(placed.reference)
    with pytest.raises(InvalidWebhook):
        services.handle_stripe_webhook(body, "t=1,v1=00", deps)
    assert deps.orders.get(placed.reference).payment is PaymentState.AWAITING


def test_a_second_order_on_the_same_certificate_is_refused(deps):
    order(deps, "FA/1002")
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1002", "SW1A 2AA", deps)


def test_two_confirmations_racing_on_one_certificate_make_one_order(deps):
    checked = services.check_certificate("FA/1001", "SW1A 2AA", deps)
    details = parse_delivery_details(delivery_form())
    services.place_order(checked, details, deps)
    with pytest.raises(CertificateAlreadyClaimed):
        services.place_order(checked, details, deps)
    assert len(deps.orders.orders) == 1


def test_refused_certificates_and_bad_input(deps):
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1003", "SW1A 2AA", deps)
    with pytest.raises(InvalidInput) as refused:
        services.check_certificate("", "nowhere", deps)
    assert set(refused.value.errors) == {"reference", "postcode"}


def test_stripe_down_leaves_nothing_holding_the_certificate(deps):
    deps.payments.unavailable = True
    with pytest.raises(PaymentServiceUnavailable):
        order(deps)
    deps.payments.unavailable = False
    assert order(deps).checkout_url


def test_import_reports_bad_rows_by_line_and_writes_the_good_ones(deps):
    rows = [register_row("FA/2001"), register_row("FA/2002", status="unknown"), register_row("FA 2001")]
    report = services.import_register(enumerate(rows, start=2), deps.register, deps.keys, deps.settings.reference_rules)
    assert report.written == 1
    assert [line for line, _ in report.rejected] == [3, 4]
    assert "status" in report.rejected[0][1] and "repeats line 2" in report.rejected[1][1]


def test_confirming_again_after_an_order_that_did_not_go_ahead_places_a_new_one(deps):
    checked = services.check_certificate("FA/1001", "SW1A 2AA", deps)
    details = parse_delivery_details(delivery_form())
    deps.payments.unavailable = True
    with pytest.raises(PaymentServiceUnavailable):
        services.confirm_order(checked, details, None, deps)
    [abandoned] = deps.orders.orders
    deps.payments.unavailable = False
    placed = services.confirm_order(checked, details, abandoned, deps)
    assert placed.reference != abandoned and placed.checkout_url
    assert services.confirm_order(checked, details, placed.reference, deps) == placed


def test_confirming_a_confirmed_order_again_shows_it_rather_than_ordering_twice(deps):
    checked = services.check_certificate("FA/1002", "SW1A 2AA", deps)
    details = parse_delivery_details(delivery_form())
    first = services.confirm_order(checked, details, None, deps)
    assert services.confirm_order(checked, details, first.reference, deps) == first
    assert len(deps.fulfilment_queue.receive_all()) == 1


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
    body, signature = deps.payments.completed_event(placed.reference)
    with pytest.raises(QueueUnavailable):
        services.handle_stripe_webhook(body, signature, deps)
    assert deps.orders.get(placed.reference).fulfilment is FulfilmentState.NOT_RELEASED
    assert services.handle_stripe_webhook(body, signature, deps) == "recorded"
    assert services.handle_stripe_webhook(body, signature, deps) == "recorded"
    assert [m["order_reference"] for m in real_queue.receive_all()] == [placed.reference]
    assert deps.orders.get(placed.reference).fulfilment is FulfilmentState.RELEASED


def test_a_free_order_stands_when_the_queue_is_down_and_waits_for_the_relay(deps):
    real_queue = deps.fulfilment_queue
    deps.fulfilment_queue = FailingOnceQueue(real_queue)
    placed = order(deps, "FA/1002")
    stored = deps.orders.get(placed.reference)
    assert (stored.state, stored.fulfilment) == (OrderState.CONFIRMED, FulfilmentState.NOT_RELEASED)
    assert stored.awaits_release and real_queue.receive_all() == []
