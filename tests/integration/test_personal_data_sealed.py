"""A copy of the orders table shows nobody: the personal fields are sealed under the personal-data
KMS key before they are written (chalicelib/adapters/kms_fields.py), each bound to its order and
field, and only the readers that must see them open them."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters import kms_fields
from chalicelib.adapters.dynamodb import build_models
from chalicelib.adapters.dynamodb_orders import DynamoOrders
from chalicelib.adapters.kms_fields import PersonalFields, SealedValueUnreadable
from chalicelib.bootstrap import personal_fields, recipient_key, tables_for
from chalicelib.domain.credentials import Scope
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.lifecycle import place_order
from chalicelib.domain.money import Money
from chalicelib.services.credentials import create_api_key
from tests.builders import NOW, delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_manufacturer import call
from tests.journeys.test_payment_events import paid_order

PAID_HOLDER = delivery_form()  # what checkout() and paid_order() enter
FREE_HOLDER = delivery_form(
    full_name="Zebedee Quill-Farthing",
    address_line_1="Flat 9 Ormsby Mansions",
    address_line_2="Wapping Backstreet",
    town="Stepney Marsh",
    postcode="e1 6an",
    email="zebedee.quill@example.org",
    contact_consent="yes",
)


def raw_items(settings) -> list[dict]:
    """Every item of every table, as a backup or an over-broad role would read them."""
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    tables = (
        settings.orders_table,
        settings.register_table,
        settings.claims_table,
        settings.attempts_table,
        settings.contacts_table,
    )
    items = []
    for table in tables:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            items += page["Items"]
    return items


def clear_values(form: dict[str, str]) -> set[str]:
    """Each personal answer as entered and as stored (a postcode is kept upper case, spaced)."""
    values = {form[name] for name in ("full_name", "address_line_1", "address_line_2", "town", "email") if form[name]}
    postcode = form["postcode"].upper()
    return values | {postcode, postcode.replace(" ", "")}


def test_the_raw_tables_hold_no_name_address_postcode_or_email_after_real_journeys(
    client, deps, stripe_emulator, settings
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/2001", "E1 6AN", free_kit="yes"))
    paid_order(client, deps, stripe_emulator, "FA/1001")
    free = Browser(client)
    free.post("/order/certificate", {"reference": "FA/2001", "postcode": "E1 6AN"})
    free.post("/order/delivery", FREE_HOLDER)
    assert free.post("/order/confirm", {"confirm": "yes"}).status_code == 303
    token = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
    status, listed = call(client, token, "GET", "/fulfilment-orders")
    recipients = {item["recipient"]["name"]: item for item in listed["fulfilment_orders"]}
    assert status == 200 and set(recipients) == {PAID_HOLDER["full_name"], FREE_HOLDER["full_name"]}
    fulfilment_id = recipients[FREE_HOLDER["full_name"]]["fulfilment_id"]
    dispatch = {"kit_code": "SW-1", "carrier": "Royal Mail", "tracking_reference": "RM1GB"}
    dispatched_at = deps.clock().isoformat().replace("+00:00", "Z")
    path = f"/fulfilment-orders/{fulfilment_id}/dispatch"
    assert call(client, token, "POST", path, dispatch | {"dispatched_at": dispatched_at})[0] == 200
    reference = "TK-" + fulfilment_id.removeprefix("F-")
    status_page = Browser(client).post("/status", {"reference": reference, "postcode": "E1 6AN"})
    assert status_page.status_code == 200  # the status check compares the postcode once opened
    from tests.journeys.test_contacts import follow, link

    follow(client, link(deps, FREE_HOLDER["email"], "/contact/confirm"))  # the tick box's registration
    assert [email for email, _ in deps.contacts.confirmed()] == [FREE_HOLDER["email"]]

    dump = json.dumps(raw_items(settings))
    assert [v for v in clear_values(PAID_HOLDER) | clear_values(FREE_HOLDER) if v.lower() in dump.lower()] == []
    [item] = [i for i in raw_items(settings) if i.get("order_ref", {}).get("S") == reference]
    assert all(item[name]["S"].startswith("pd1.") for name in ("full_name", "postcode", "email", "address_line_2"))


@pytest.fixture
def store(settings):
    fields = personal_fields(settings, boto3.session.Session())
    return DynamoOrders(build_models(tables_for(settings)), fields, recipient_key=recipient_key(settings))


def an_order(reference: str):
    eligibility = Eligibility(Money(895), EligibilityReason.STANDARD_PRICE)
    return place_order(reference, f"cert-{reference}", eligibility, parse_delivery_details(FREE_HOLDER), NOW).order


def test_a_sealed_value_copied_to_another_order_or_field_does_not_open(store, settings):
    first, second = an_order("TK-AAAAA-00001"), an_order("TK-AAAAA-00002")
    for order in (first, second):
        store.create_claiming_certificate(order, 1)
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    stolen = store.get(first.reference).delivery
    for field, value in (("full_name", stolen.full_name), ("town", stolen.postcode)):
        dynamodb.update_item(
            TableName=settings.orders_table,
            Key={"order_ref": {"S": second.reference}},
            UpdateExpression="SET #f = :v",
            ExpressionAttributeNames={"#f": field},
            ExpressionAttributeValues={":v": {"S": value}},
        )
        with pytest.raises(SealedValueUnreadable) as refused:
            store.delivery_of(store.get(second.reference))
        assert FREE_HOLDER["full_name"] not in str(refused.value) and second.reference in str(refused.value)
        dynamodb.update_item(
            TableName=settings.orders_table,
            Key={"order_ref": {"S": second.reference}},
            UpdateExpression="SET #f = :v",
            ExpressionAttributeNames={"#f": field},
            ExpressionAttributeValues={":v": {"S": getattr(store.get(first.reference).delivery, field)}},
        )
    with pytest.raises(SealedValueUnreadable):  # the first order's own town, still on the second
        store.delivery_of(store.get(second.reference))
    assert store.delivery_of(store.get(first.reference)) == first.delivery


def test_an_order_written_in_clear_before_sealing_is_still_read(store, settings):
    """The migration path: a value without the sealed prefix is taken as written before sealing."""
    order = an_order("TK-AAAAA-00003")
    store.create_claiming_certificate(order, 1)
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    dynamodb.update_item(
        TableName=settings.orders_table,
        Key={"order_ref": {"S": order.reference}},
        UpdateExpression="SET full_name = :n, postcode = :p",
        ExpressionAttributeValues={":n": {"S": "Old Clear Name"}, ":p": {"S": "E1 6AN"}},
    )
    assert store.delivery_of(store.get(order.reference)) == dataclasses.replace(
        order.delivery, full_name="Old Clear Name"
    )


class Ticking:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_container_makes_one_data_key_and_opens_each_writers_key_once(settings, aws_requests):
    kms = boto3.client("kms", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    clock = Ticking()
    writer = PersonalFields(kms, settings.personal_data_key_id, clock)
    reader = PersonalFields(kms, settings.personal_data_key_id, clock)
    aws_requests.reset()
    sealed = [writer.seal(f"TK-AAAAA-0000{n}", "full_name", f"Name {n}") for n in range(5)]
    assert aws_requests.calls == {("kms", "GenerateDataKey"): 1}
    assert [writer.open(f"TK-AAAAA-0000{n}", "full_name", s) for n, s in enumerate(sealed)] == [
        f"Name {n}" for n in range(5)
    ]
    assert aws_requests.calls == {("kms", "GenerateDataKey"): 1}  # its own key opens without KMS
    assert [reader.open(f"TK-AAAAA-0000{n}", "full_name", s) for n, s in enumerate(sealed)][-1] == "Name 4"
    assert aws_requests.calls == {("kms", "GenerateDataKey"): 1, ("kms", "Decrypt"): 1}
    clock.now += kms_fields.MAX_KEY_AGE
    later = writer.seal("TK-AAAAA-00009", "full_name", "Name 9")
    assert aws_requests.calls[("kms", "GenerateDataKey")] == 2 and later.split(".")[1] != sealed[0].split(".")[1]
    assert reader.open("TK-AAAAA-00001", "full_name", sealed[1]) == "Name 1"  # kept too long: asked again
    assert aws_requests.calls[("kms", "Decrypt")] == 2


def test_a_data_key_seals_at_most_its_number_of_fields(settings, monkeypatch):
    monkeypatch.setattr(kms_fields, "MAX_KEY_USES", 3)
    kms = boto3.client("kms", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    writer = PersonalFields(kms, settings.personal_data_key_id, Ticking())
    keys = {writer.seal("TK-AAAAA-00001", "town", "x").split(".")[1] for _ in range(7)}
    assert len(keys) == 3


def test_the_erasure_removes_the_sealed_fields_without_opening_them(store, settings, aws_requests):
    from chalicelib.domain.changes import Source
    from chalicelib.domain.lifecycle import erase_personal_data

    order = an_order("TK-AAAAA-00004")
    store.create_claiming_certificate(order, 1)
    stored = store.get(order.reference)
    aws_requests.reset()
    store.save(stored, erase_personal_data(stored, Source("operator:test"), NOW + timedelta(days=1), "request").order)
    assert aws_requests.total("kms") == 0
    [item] = [i for i in raw_items(settings) if i.get("order_ref", {}).get("S") == order.reference]
    personal = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email")
    assert {name: item[name]["S"] for name in personal if name in item} == {
        "full_name": "[erased]",
        "address_line_1": "[erased]",
        "town": "[erased]",
    }


class KmsOutage:
    """KMS failing as botocore reports it once its retries are spent, on every client made from now."""

    def __init__(self, monkeypatch):
        self.failing: set[str] = set()
        original = botocore.session.Session.create_client
        outage = self

        def create_client(self, service_name, *args, **kwargs):
            client = original(self, service_name, *args, **kwargs)
            if service_name == "kms":
                client.meta.events.register("before-call.kms", outage._before_call)
            return client

        monkeypatch.setattr(botocore.session.Session, "create_client", create_client)

    def _before_call(self, model, **_):
        if model.name in self.failing:
            error = {"Error": {"Code": "ServiceUnavailable", "Message": "KMS is down (test)"}}
            raise ClientError(error, model.name)


def problem_page(response) -> tuple[int, bool]:
    return response.status_code, b"Sorry, there is a problem with the service" in response.body


def test_kms_down_at_confirmation_writes_nothing_and_the_holder_sees_the_same_page_as_for_dynamodb(
    deps, settings, monkeypatch
):
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap

    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    outage = KmsOutage(monkeypatch)
    bootstrap.use(bootstrap.build(settings, deps.clock))  # a cold container: its kms client sees the outage
    try:
        with Client(app) as client:
            browser = Browser(client)
            browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
            browser.post("/order/delivery", delivery_form())
            outage.failing = {"GenerateDataKey"}
            assert problem_page(browser.post("/order/confirm", {"confirm": "yes"})) == (500, True)
            assert raw_items(settings) == [item for item in raw_items(settings) if "order_ref" not in item]
            assert [i for i in raw_items(settings) if "kits" in i] == []  # no claim taken either
            outage.failing = set()
            assert browser.post("/order/confirm", {"confirm": "yes"}).status_code == 303  # the holder tries again
    finally:
        bootstrap.reset()
    assert len([i for i in raw_items(settings) if "order_ref" in i]) == 1


def test_kms_down_when_the_webhook_opens_the_order_answers_stripe_5xx_and_the_redelivery_releases(
    client, deps, settings, stripe_emulator, monkeypatch
):
    from chalicelib import bootstrap
    from chalicelib.domain.orders import FulfilmentState, PaymentState
    from tests.conftest import TEST_SECRETS
    from tests.integration.test_round_trip_budgets import paid_event
    from tests.journeys.browser import deliver_webhook

    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    event = paid_event(client, deps, stripe_emulator)
    reference = event["data"]["object"]["client_reference_id"]
    outage = KmsOutage(monkeypatch)
    bootstrap.use(bootstrap.build(settings, deps.clock))  # Stripe's call lands on another container
    outage.failing = {"Decrypt"}
    assert deliver_webhook(client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]).status_code == 500
    order = deps.orders.get(reference)
    assert (order.payment, order.fulfilment) == (PaymentState.PAID, FulfilmentState.NOT_RELEASED)  # the relay's
    status = Browser(client).post("/status", {"reference": reference, "postcode": "SW1A 2AA"})
    assert problem_page(status) == (500, True)  # the status check cannot compare: the same page as DynamoDB's
    outage.failing = set()
    assert deliver_webhook(client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]).status_code == 200  # redelivered
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED


def test_text_a_holder_types_that_looks_sealed_is_sealed_like_any_other(store, settings):
    order = an_order("TK-AAAAA-00005")
    tricky = dataclasses.replace(order.delivery, address_line_2="pd1.AAAA.BBBB", full_name="[erased] Smith")
    order = dataclasses.replace(order, delivery=tricky)
    store.create_claiming_certificate(order, 1)
    [item] = [i for i in raw_items(settings) if i.get("order_ref", {}).get("S") == order.reference]
    assert item["address_line_2"]["S"] != "pd1.AAAA.BBBB" and "Smith" not in item["full_name"]["S"]
    assert store.delivery_of(store.get(order.reference)) == tricky
