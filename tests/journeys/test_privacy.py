"""Storage limitation and erasure on the real stack: after the retention purge and an erasure
request no table holds a name, address or email, and finance's reconciliation still balances."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.domain.credentials import Scope
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.services import finance
from chalicelib.services.credentials import create_api_key
from ops.cli import main as cli
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_finance import sections
from tests.journeys.test_manufacturer import DISPATCH
from tests.journeys.test_order_journey import queued_messages
from tests.journeys.test_payment_events import checkout, deliver, events, the_order

PERSONAL = ("Ada Example", "1 Test Street", "SW1A 2AA", "ada@example.com", "Flat 9")


@pytest.fixture
def now(deps):
    moment = datetime.now(timezone.utc)
    deps.clock.set(moment)
    return moment


def every_item(settings) -> str:
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    text = []
    for table in dynamodb.list_tables()["TableNames"]:
        pages = dynamodb.get_paginator("scan").paginate(TableName=table)
        text += [repr(item) for page in pages for item in page["Items"]]
    return "\n".join(text)


def order(client, emulator, reference: str, pay: bool = True) -> str:
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form(address_line_2="Flat 9"))
    to = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"]
    if pay and "/c/pay/" in to:
        emulator.pay(to.rsplit("/", 1)[-1])
        deliver(client, events(emulator, "checkout.session.completed")[-1])
    return browser.cookie


def reconcile(deps, day) -> dict:
    buffer = io.BytesIO()
    finance.export_to(buffer, "csv", finance.parse_period(day.isoformat(), (day + timedelta(days=1)).isoformat()), deps)
    return dict(sections(buffer.getvalue().decode("utf-8"))["Summary"][1:])


def test_retention_purge_and_erasure_leave_no_personal_data_and_finance_still_balances(
    client, deps, stripe_emulator, settings, environment, monkeypatch, now
):
    load_register(
        deps,
        register_row("FA/1001", "SW1A 2AA"),
        register_row("FA/1002", "SW1A 2AA", free_kit="yes"),
        register_row("FA/1003", "SW1A 2AA", free_kit="yes"),
    )
    order(client, stripe_emulator, "FA/1001")
    order(client, stripe_emulator, "FA/1002")
    order(client, stripe_emulator, "FA/1003")
    token = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
    listed = client.http.get("/manufacturer/fulfilment-orders", headers={"Authorization": f"Bearer {token}"})
    # the paid order first, so that the third (erased before dispatch, which cancels it) is a free one
    by_price = sorted(
        listed.json_body["fulfilment_orders"], key=lambda o: deps.orders.get(o["order_reference"]).is_free
    )
    first, second, third = [o["fulfilment_id"] for o in by_price]
    dispatched = {**DISPATCH, "dispatched_at": now.isoformat(timespec="seconds").replace("+00:00", "Z")}
    for fulfilment_id in (first, second):
        response = client.http.post(
            f"/manufacturer/fulfilment-orders/{fulfilment_id}/dispatch",
            body=json.dumps(dispatched),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.body
    before = reconcile(deps, now.date())
    references = ["TK-" + f.removeprefix("F-") for f in (first, second, third)]
    held = [deps.orders.delivery_of(deps.orders.get(reference)) for reference in references]
    assert all((d.full_name, d.address_line_2, d.email) == ("Ada Example", "Flat 9", "ada@example.com") for d in held)
    assert "pd1." in every_item(
        settings
    )  # held sealed: never in clear (tests/integration/test_personal_data_sealed.py)

    later = now + timedelta(days=31)
    deps.clock.set(later)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    client.lambda_.invoke("purge_personal_data", event)
    client.lambda_.invoke("purge_personal_data", event)  # a second run finds nothing more to do
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    third_order = "TK-" + third.removeprefix("F-")  # not dispatched: erased on request
    erased = CliRunner().invoke(cli, ["erase", third_order, "--reason", "holder asked", "--operator", "alice"])
    assert erased.exit_code == 0, erased.output

    stored = every_item(settings)
    for value in PERSONAL:
        assert value not in stored, value
    assert "pd1." not in stored  # not even sealed: the erasure overwrote every field without opening one
    deps.clock.set(now)
    after = reconcile(deps, now.date())
    for line in ("charges", "gross_pence", "fees_pence", "net_pence", "payment paid"):
        assert after[line] == before[line], line
    assert int(after["free_kits"]) == int(before["free_kits"]) - 1  # the third was not posted: its erasure cancelled it


# -- Erasure never sends an undeliverable kit (issue 14, part 3) ----------------------------------


def erase(environment, monkeypatch, reference: str):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, ["erase", reference, "--reason", "holder asked", "--operator", "alice"])


def scheduled(client, job: str) -> None:
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    client.lambda_.invoke(job, event)


def test_an_order_erased_as_its_holder_pays_is_refunded_and_no_message_is_ever_sent(
    client, deps, stripe_emulator, settings, environment, monkeypatch
):
    """The observation replayed: erased while awaiting payment, then the holder's payment arrives."""
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    browser, session_id = checkout(client, "FA/1001")
    reference = the_order(deps, browser).reference
    stripe_emulator.pay(session_id)  # the holder pays on Stripe's page as the operator erases
    erased = erase(environment, monkeypatch, reference)
    assert erased.exit_code == 0, erased.output
    paid = events(stripe_emulator, "checkout.session.completed")[-1]
    deliver(client, paid)
    deliver(client, paid)  # Stripe delivers it twice
    scheduled(client, "relay_unsent_fulfilments")

    assert queued_messages(settings) == []
    order = deps.orders.get(reference)
    assert (order.state, order.payment, order.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
    )
    assert deps.payments.money_view(order.payment_intent_id).amount_refunded == order.amount.pence
    assert [r for r in stripe_emulator.api_requests() if r == ("POST", "/v1/refunds")] == [("POST", "/v1/refunds")]
    assert "Your order was cancelled and refunded" in browser.get("/order/confirmation").body.decode()


def test_an_order_erased_before_its_holder_pays_is_cancelled_and_its_checkout_closed(
    client, deps, stripe_emulator, settings, environment, monkeypatch
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    browser, session_id = checkout(client, "FA/1001")
    reference = the_order(deps, browser).reference
    assert erase(environment, monkeypatch, reference).exit_code == 0
    assert stripe_emulator.checkout_view(session_id).session["status"] == "expired"
    order = deps.orders.get(reference)
    assert (order.state, order.payment, order.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.NOT_TAKEN,
        FulfilmentState.CANCELLED,
    )
    assert deps.register.find(deps.keys.reference_key("FA1001")).kits_claimed == 0
    assert queued_messages(settings) == []


def test_erasing_a_released_order_moves_it_from_the_kit_makers_open_list_to_its_cancellations(
    client, deps, stripe_emulator, settings, environment, monkeypatch
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    order(client, stripe_emulator, "FA/1001")
    token = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
    headers = {"Authorization": f"Bearer {token}"}
    [listed] = client.http.get("/manufacturer/fulfilment-orders", headers=headers).json_body["fulfilment_orders"]
    reference = listed["order_reference"]

    first = erase(environment, monkeypatch, reference)
    second = erase(environment, monkeypatch, reference)  # twice: nothing more happens
    assert first.exit_code == second.exit_code == 0, (first.output, second.output)
    assert first.output == second.output
    assert "order cancelled, fulfilment cancelled, payment refunded" in first.output

    assert client.http.get("/manufacturer/fulfilment-orders", headers=headers).json_body["fulfilment_orders"] == []
    cancellations = client.http.get("/manufacturer/cancellations", headers=headers).json_body
    assert [c["fulfilment_id"] for c in cancellations["cancellations"]] == [listed["fulfilment_id"]]
    stored = deps.orders.get(reference)
    assert (stored.payment, stored.refunded_pence) == (PaymentState.REFUNDED, stored.amount.pence)
    assert [r for r in stripe_emulator.api_requests() if r == ("POST", "/v1/refunds")] == [("POST", "/v1/refunds")]


def test_erasing_a_paid_order_while_stripe_is_down_says_so_and_the_same_command_refunds_it_later(
    client, deps, stripe_emulator, settings, environment, monkeypatch
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    order(client, stripe_emulator, "FA/1001")
    [reference] = [
        e["data"]["object"]["client_reference_id"] for e in events(stripe_emulator, "checkout.session.completed")
    ]
    stripe_emulator.fail_next_requests(10, status=500)
    refused = erase(environment, monkeypatch, reference)
    assert refused.exit_code == 1
    assert "erased and the order cancelled, but Stripe did not take its refund" in refused.output
    assert "Run the same command again" in refused.output
    stripe_emulator.fail_next_requests(0)
    stored = deps.orders.get(reference)
    assert stored.erased_at is not None and stored.payment is PaymentState.PAID
    again = erase(environment, monkeypatch, reference)
    assert again.exit_code == 0, again.output
    assert deps.orders.get(reference).payment is PaymentState.REFUNDED
