"""One contract per port, run against the in-memory fake and the real adapter on moto alike.

The real adapters run against moto's HTTP server (tests/conftest.py), so what passes here is what
PynamoDB and boto3 actually send."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import boto3
import pytest

from chalicelib.adapters.dynamodb import DynamoOrders, DynamoRegister, build_models
from chalicelib.bootstrap import tables_for
from chalicelib.adapters.sqs_queue import SqsFulfilmentQueue
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.errors import CertificateAlreadyClaimed, OrderNotFound, PaymentMismatch
from chalicelib.domain.fulfilment import fulfilment_message_for
from chalicelib.domain.money import Money, free
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState, place_order
from chalicelib.domain.register import CertificateStatus, RegisterEntry
from chalicelib.ports import CheckoutSession
from tests.builders import NOW, delivery_form
from tests.fakes import InMemoryFulfilmentQueue, InMemoryOrders, InMemoryRegister


@pytest.fixture(params=["fake", "dynamodb"])
def stores(request):
    """(register, orders) sharing one set of claims, as the real tables do."""
    if request.param == "fake":
        claims: dict[str, int] = {}
        return InMemoryRegister(claims), InMemoryOrders(claims)
    settings = request.getfixturevalue("settings")
    models = build_models(tables_for(settings))
    return DynamoRegister(models), DynamoOrders(models)


def entry(key: str = "k1", **changes) -> RegisterEntry:
    base = RegisterEntry(key, "mac", CertificateStatus.IN_FORCE, date(2028, 1, 31), False)
    return dataclasses.replace(base, **changes)


STANDARD_PRICE = Money(895)


def an_order(reference: str = "TK-AAAAA-00001", certificate_key: str = "k1", price: Money = STANDARD_PRICE):
    reason = EligibilityReason.STANDARD_PRICE if price.pence else EligibilityReason.REGISTER_FLAG
    return place_order(
        reference,
        certificate_key,
        Eligibility(price, reason),
        parse_delivery_details(delivery_form(address_line_2="Flat 2", email="")),
        NOW,
    )


class TestRegisterContract:
    def test_a_saved_entry_is_found_with_no_claims(self, stores):
        register, _ = stores
        assert register.save_all([entry("k1"), entry("k2", free_kit=True)]) == 2
        found = register.find("k2")
        assert found.entry == entry("k2", free_kit=True) and found.kits_claimed == 0

    def test_an_unknown_key_finds_nothing(self, stores):
        register, _ = stores
        assert register.find("missing").entry is None

    def test_saving_again_replaces_rather_than_duplicates(self, stores):
        register, _ = stores
        register.save_all([entry("k1")])
        register.save_all([entry("k1", status=CertificateStatus.REVOKED)])
        assert register.find("k1").entry.status is CertificateStatus.REVOKED

    def test_more_than_one_batch_is_written(self, stores):
        register, _ = stores
        assert register.save_all(entry(f"k{i}") for i in range(60)) == 60
        assert register.find("k59").entry is not None

    def test_claims_made_by_orders_are_seen_by_the_register(self, stores):
        register, orders = stores
        register.save_all([entry("k1")])
        orders.create_claiming_certificate(an_order(), 1)
        assert register.find("k1").kits_claimed == 1


class TestOrdersContract:
    def test_an_order_round_trips_intact(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        assert orders.get(order.reference) == order

    def test_an_unknown_order_is_not_found(self, stores):
        _, orders = stores
        with pytest.raises(OrderNotFound):
            orders.get("TK-NONE0-NONE0")

    def test_the_kit_limit_per_certificate_is_enforced(self, stores):
        _, orders = stores
        orders.create_claiming_certificate(an_order("TK-AAAAA-00001"), 2)
        orders.create_claiming_certificate(an_order("TK-AAAAA-00002"), 2)
        with pytest.raises(CertificateAlreadyClaimed):
            orders.create_claiming_certificate(an_order("TK-AAAAA-00003"), 2)
        with pytest.raises(OrderNotFound):
            orders.get("TK-AAAAA-00003")

    def test_simultaneous_confirmations_of_one_certificate_make_one_order(self, stores):
        _, orders = stores
        candidates = [an_order(f"TK-RACE0-0000{i}") for i in range(6)]

        def attempt(order):
            try:
                orders.create_claiming_certificate(order, 1)
                return order.reference
            except CertificateAlreadyClaimed:
                return None

        with ThreadPoolExecutor(max_workers=6) as pool:
            winners = [ref for ref in pool.map(attempt, candidates) if ref]
        assert len(winners) == 1
        stored = []
        for order in candidates:
            try:
                stored.append(orders.get(order.reference).reference)
            except OrderNotFound:
                pass
        assert stored == winners

    def test_payment_is_recorded_once_per_event(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        first = orders.mark_paid_once(order.reference, "evt_1", Money(895), NOW)
        again = orders.mark_paid_once(order.reference, "evt_1", Money(895), NOW)
        assert (first.state, first.payment) == (OrderState.CONFIRMED, PaymentState.PAID)
        assert again == first and first.processed_events == {"evt_1"}

    def test_a_payment_that_does_not_match_is_refused_and_the_order_left_awaiting(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        with pytest.raises(PaymentMismatch):
            orders.mark_paid_once(order.reference, "evt_1", Money(895, "eur"), NOW)
        assert orders.get(order.reference).payment is PaymentState.AWAITING

    def test_release_is_recorded_once(self, stores):
        _, orders = stores
        order = an_order(price=free())
        orders.create_claiming_certificate(order, 1)
        orders.mark_released(order.reference, NOW)
        orders.mark_released(order.reference, NOW.replace(hour=13))
        stored = orders.get(order.reference)
        assert stored.fulfilment is FulfilmentState.RELEASED and stored.released_at == NOW

    def test_checkout_is_recorded(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        orders.record_checkout(order.reference, CheckoutSession("cs_1", "https://pay.example/cs_1"))
        assert orders.get(order.reference).checkout_url == "https://pay.example/cs_1"

    def test_abandoning_an_unpaid_order_gives_the_kit_back(self, stores):
        register, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        orders.abandon(order.reference)
        orders.abandon(order.reference)
        assert orders.get(order.reference).state is OrderState.CANCELLED
        assert register.find(order.certificate_key).kits_claimed == 0
        orders.create_claiming_certificate(an_order("TK-AAAAA-00002"), 1)

    def test_a_paid_order_cannot_be_abandoned(self, stores):
        register, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        orders.mark_paid_once(order.reference, "evt_1", Money(895), NOW)
        orders.abandon(order.reference)
        assert orders.get(order.reference).payment is PaymentState.PAID
        assert register.find(order.certificate_key).kits_claimed == 1


@pytest.fixture(params=["fake", "sqs"])
def queue_and_reader(request):
    if request.param == "fake":
        fake = InMemoryFulfilmentQueue()
        return fake, fake.receive_all
    settings = request.getfixturevalue("settings")
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)

    def receive_all():
        batch = sqs.receive_message(QueueUrl=settings.fulfilment_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in batch]

    return SqsFulfilmentQueue(sqs, settings.fulfilment_queue_url), receive_all


class TestFulfilmentQueueContract:
    def test_a_message_sent_twice_arrives_once(self, queue_and_reader):
        queue, receive_all = queue_and_reader
        message = fulfilment_message_for(an_order(price=free()), "PMK-1")
        queue.send(message)
        queue.send(message)
        assert receive_all() == [message.to_document()]

    def test_messages_for_different_orders_all_arrive(self, queue_and_reader):
        queue, receive_all = queue_and_reader
        for i in range(3):
            queue.send(fulfilment_message_for(an_order(f"TK-AAAAA-0000{i}", price=free()), "PMK-1"))
        assert sorted(m["order_reference"] for m in receive_all()) == [f"TK-AAAAA-0000{i}" for i in range(3)]


def test_a_queue_that_cannot_be_reached_is_reported_as_unavailable(settings):
    from chalicelib.domain.errors import QueueUnavailable

    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    missing = settings.fulfilment_queue_url.replace("fulfilment-queue", "no-such-queue")
    with pytest.raises(QueueUnavailable):
        SqsFulfilmentQueue(sqs, missing).send(fulfilment_message_for(an_order(price=free()), "PMK-1"))
