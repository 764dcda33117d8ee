"""The manufacturer's side through chalice.test.Client on the real adapters (moto, emulator):
its API behind the key authorizer, the outbox's relay, the dead-letter queue, the holder's
status page."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import boto3
import pytest

from chalicelib import services
from chalicelib.domain.credentials import Scope, read_token
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.errors import QueueUnavailable
from chalicelib.domain.orders import FulfilmentState, PaymentState
from chalicelib.domain.references import new_order_reference
from chalicelib.services.credentials import create_api_key, revoke_api_key
from chalicelib.services.manufacturer import fulfilment_health
from chalicelib.domain.times import to_iso
from tests.builders import NOW, delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_order_journey import assert_matches_schema, queued_messages
from tests.journeys.test_payment_events import deliver, events, paid_order

DISPATCH = {
    "kit_code": "SW-123456",
    "carrier": "Royal Mail",
    "tracking_reference": "RM123456789GB",
    "dispatched_at": to_iso(NOW),
}


@pytest.fixture
def holders(deps):
    load_register(
        deps,
        *[register_row(f"FA/{2000 + i}", "SW1A 2AA", free_kit="yes") for i in range(4)],
        register_row("FA/1001", "SW1A 2AA"),
    )
    return deps


def free_order(deps, number: int = 0, **delivery) -> str:
    checked = services.check_certificate(f"FA/{2000 + number}", "SW1A 2AA", deps)
    placed = services.confirm_order(
        checked, parse_delivery_details(delivery_form(**delivery)), new_order_reference(), deps
    )
    return placed.reference


def call(client, token, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None or method == "POST":
        headers["Content-Type"] = "application/json"
    response = getattr(client.http, method.lower())(
        f"/manufacturer{path}", headers=headers, body=json.dumps(body or {}) if method == "POST" else None
    )
    return response.status_code, json.loads(response.body or b"null")


def fid(reference: str) -> str:
    return "F-" + reference.removeprefix("TK-")


def test_open_orders_are_listed_oldest_first_with_a_cursor_and_only_parcel_fields(client, holders, token):
    references = []
    for number in range(3):
        holders.clock.set(holders_now(number))
        references.append(free_order(holders, number))
    status, first = call(client, token, "GET", "/fulfilment-orders?limit=2")
    assert status == 200 and [o["order_reference"] for o in first["fulfilment_orders"]] == references[:2]
    status, rest = call(client, token, "GET", f"/fulfilment-orders?limit=2&cursor={first['next_cursor']}")
    assert [o["order_reference"] for o in rest["fulfilment_orders"]] == references[2:]
    order = first["fulfilment_orders"][0]
    assert set(order) == {
        "schema_version",
        "fulfilment_id",
        "order_reference",
        "product_code",
        "quantity",
        "recipient",
        "created_at",
        "state",
        "released_at",
    }
    assert_matches_schema([{k: v for k, v in order.items() if k not in ("state", "released_at")}])
    assert "ada@example.com" not in json.dumps(first)


def holders_now(minutes: int):
    from tests.builders import NOW

    return NOW + timedelta(minutes=minutes)


def test_accept_and_dispatch_are_idempotent_and_a_different_second_dispatch_conflicts(client, holders, token):
    reference = free_order(holders)
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/accept")[0] == 200
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/accept")[0] == 200
    status, body = call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)
    assert status == 200 and body["state"] == "dispatched" and body["dispatch"]["kit_code"] == "SW-123456"
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH) == (status, body)
    status, conflict = call(
        client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", {**DISPATCH, "kit_code": "SW-999999"}
    )
    assert status == 409 and "already dispatched with kit code SW-123456" in conflict["error"]
    order = holders.orders.get(reference)
    assert order.fulfilment is FulfilmentState.DISPATCHED and order.dispatch.tracking_reference == "RM123456789GB"
    assert [e.change for e in order.history].count("dispatched by Royal Mail (RM123456789GB)") == 1
    assert call(client, token, "GET", "/fulfilment-orders")[1]["fulfilment_orders"] == []


def test_dispatch_after_a_refund_cancellation_is_refused_and_the_cancellation_is_listed(
    client, holders, token, stripe_emulator
):
    _, order = paid_order(client, holders, stripe_emulator)
    stripe_emulator.refund(order.payment_intent_id)
    deliver(client, events(stripe_emulator, "charge.refunded")[-1])
    status, body = call(client, token, "POST", f"/fulfilment-orders/{order.fulfilment_id}/dispatch", DISPATCH)
    assert status == 409 and "cancelled because the order was refunded: do not send it" in body["error"]
    status, listed = call(client, token, "GET", "/cancellations")
    assert [c["fulfilment_id"] for c in listed["cancellations"]] == [order.fulfilment_id]
    assert call(client, token, "POST", f"/cancellations/{order.fulfilment_id}/acknowledge")[0] == 200
    assert call(client, token, "POST", f"/cancellations/{order.fulfilment_id}/acknowledge")[0] == 200
    assert call(client, token, "GET", "/cancellations")[1]["cancellations"] == []
    assert holders.orders.get(order.reference).payment is PaymentState.REFUNDED


def test_reject_records_the_reason(client, holders, token):
    reference = free_order(holders)
    status, body = call(
        client, token, "POST", f"/fulfilment-orders/{fid(reference)}/reject", {"reason": "address incomplete"}
    )
    assert status == 200 and body["state"] == "rejected"
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/reject", {"reason": "again"})[0] == 200
    assert holders.orders.get(reference).rejection_reason == "address incomplete"
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 409


def test_a_returned_parcel_is_recorded_once_the_holder_is_told_what_next_and_the_page_says_so(
    client, holders, token, settings
):
    from tests.journeys.test_email import assert_nothing_about_the_certificate, sent

    reference, released = free_order(holders, 0, email="sam@example.com"), free_order(holders, 1)
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    returned = f"/fulfilment-orders/{fid(reference)}/returned"
    first = call(client, token, "POST", returned, {"reason": "addressee gone away"})
    assert first == (200, {"fulfilment_id": fid(reference), "state": "returned", "dispatch": first[1]["dispatch"]})
    assert first[1]["dispatch"]["tracking_reference"] == "RM123456789GB"
    assert call(client, token, "POST", returned, {"reason": "addressee gone away"}) == first
    assert call(client, token, "POST", returned, {})[0] == 400
    status, body = call(client, token, "POST", f"/fulfilment-orders/{fid(released)}/returned", {"reason": "x"})
    assert status == 409 and "never dispatched: reject it instead" in body["error"]
    stored = holders.orders.get(reference)
    assert stored.fulfilment is FulfilmentState.RETURNED and stored.return_reason == "addressee gone away"
    assert stored.personal_data_until(timedelta(days=30)) is None
    *_, back = sent(settings)  # two confirmations, the dispatch, the return: once however often reported
    assert len(sent(settings)) == 4
    assert back["to"] == ["sam@example.com"] and "came back" in back["subject"] and reference in back["body"]
    assert "in touch to check your delivery address" in back["body"] and "gone away" not in back["body"]
    assert_nothing_about_the_certificate(back)
    page = Browser(client).post("/status", {"reference": reference, "postcode": "SW1A 2AA"}).body.decode()
    assert "Your kit came back to us" in page and "gone away" not in page


def test_bad_input_gets_field_errors_and_unknown_or_unreleased_orders_are_not_found(client, holders, token):
    reference = free_order(holders)
    status, body = call(
        client,
        token,
        "POST",
        f"/fulfilment-orders/{fid(reference)}/dispatch",
        {"kit_code": "", "carrier": "x", "tracking_reference": "t", "dispatched_at": "yesterday"},
    )
    assert status == 400 and set(body["fields"]) == {"kit_code", "dispatched_at"}
    assert call(client, token, "GET", "/fulfilment-orders?cursor=bm9uc2Vuc2U")[0] == 400
    assert call(client, token, "GET", "/fulfilment-orders?limit=0")[0] == 400
    assert call(client, token, "POST", "/fulfilment-orders/F-00000-00000/accept")[0] == 404
    assert call(client, token, "POST", "/fulfilment-orders/nonsense/accept")[0] == 404
    unpaid = Browser(client)
    unpaid.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    unpaid.post("/order/delivery", delivery_form())
    unpaid.post("/order/confirm", {"confirm": "yes"})
    [awaiting] = [o for o in [holders.orders.get(r) for r in _all_refs(holders)] if o.payment is PaymentState.AWAITING]
    assert call(client, token, "POST", f"/fulfilment-orders/{awaiting.fulfilment_id}/accept")[0] == 404


def _all_refs(deps) -> list[str]:
    table = boto3.resource("dynamodb", endpoint_url=deps.settings.aws_endpoint_url, region_name=deps.settings.region)
    return [item["order_ref"] for item in table.Table(deps.settings.orders_table).scan()["Items"]]


@pytest.mark.parametrize("case", ["missing", "not a key", "wrong secret", "revoked", "finance key"])
def test_a_missing_wrong_revoked_or_other_scope_key_is_refused(client, holders, token, case):
    free_order(holders)
    finance = create_api_key(Scope.FINANCE, "Finance", holders.api_keys, holders.clock())[1]
    presented = {
        "missing": None,
        "not a key": "letmein",
        "wrong secret": token[:-4] + "AAAA",
        "revoked": token,
        "finance key": finance,
    }[case]
    if case == "revoked":
        revoke_api_key(read_token(f"Bearer {token}")[1], holders.api_keys, holders.clock())
    status, body = call(client, presented, "GET", "/fulfilment-orders")
    assert status in (401, 403) and "fulfilment_orders" not in (body or {})


def test_a_manufacturer_key_gives_nothing_extra_on_holder_routes(client, holders, token):
    headers = {"Authorization": f"Bearer {token}"}
    assert client.http.get("/manufacturer/fulfilment-orders", headers=headers).status_code == 200
    for path in ("/order/confirmation", "/status"):
        response = client.http.get(path, headers=headers)
        assert b"fulfilment_orders" not in response.body and response.status_code != 500


class BrokenQueue:
    def __init__(self, queue):
        self.queue, self.failures = queue, 1

    def send(self, message):
        if self.failures:
            self.failures -= 1
            raise QueueUnavailable("down")
        self.queue.send(message)

    def dead_letter_depth(self):
        return self.queue.dead_letter_depth()


def relay(client):
    return client.lambda_.invoke(
        "relay_unsent_fulfilments",
        client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]),
    )


def test_a_send_failure_after_confirmation_is_healed_by_the_relay_exactly_once(client, holders, settings):
    real = holders.fulfilment_queue
    holders.fulfilment_queue = BrokenQueue(real)
    reference = free_order(holders)
    assert holders.orders.get(reference).fulfilment is FulfilmentState.NOT_RELEASED
    assert queued_messages(settings) == []
    relay(client)
    relay(client)
    messages = queued_messages(settings)
    assert [m["fulfilment_id"] for m in messages] == [fid(reference)]
    assert holders.orders.get(reference).fulfilment is FulfilmentState.RELEASED
    relay(client)
    assert queued_messages(settings) == []


def test_the_relay_resends_when_the_process_died_between_write_and_send(client, holders, settings):
    reference = free_order(holders)
    queued_messages(settings)  # consumed by the manufacturer
    order = holders.orders.get(reference)
    # As if the release had never been recorded: the outbox entry is still there.
    holders.orders.save(order, dataclasses.replace(order, fulfilment=FulfilmentState.NOT_RELEASED, released_at=None))
    relay(client)
    relay(client)
    assert [m["fulfilment_id"] for m in queued_messages(settings)] == [fid(reference)]


def test_a_poison_message_reaches_the_dead_letter_queue_and_is_reported(client, holders, settings, capsys):
    free_order(holders)
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    for _ in range(5):  # the consumer fails on it every time (redrive maxReceiveCount is 5)
        [message] = sqs.receive_message(QueueUrl=settings.fulfilment_queue_url, VisibilityTimeout=0)["Messages"]
    assert sqs.receive_message(QueueUrl=settings.fulfilment_queue_url).get("Messages", []) == []
    assert message["MessageId"]
    health = fulfilment_health(holders)
    assert health.dead_letters == 1
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emitted[-1]["FulfilmentDeadLetters"] == 1 and emitted[-1]["StuckFulfilments"] == 0


def test_released_but_undispatched_orders_are_reported_after_the_configured_days(client, holders, capsys):
    old = free_order(holders, 0)
    later = holders.clock() + timedelta(days=6)
    holders.clock.set(later)
    fresh = free_order(holders, 1)
    health = fulfilment_health(holders)
    assert health.stuck == [fid(old)] and fid(fresh) not in health.stuck
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emitted[-1]["StuckFulfilments"] == 1
    assert emitted[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "tracekit"


def test_a_message_read_from_the_queue_and_confirmed_through_the_api_agree(client, holders, token, settings):
    reference = free_order(holders, 0, full_name="Sam Fictitious")
    [message] = queued_messages(settings)
    status, body = call(client, token, "POST", f"/fulfilment-orders/{message['fulfilment_id']}/dispatch", DISPATCH)
    assert status == 200 and holders.orders.get(reference).fulfilment is FulfilmentState.DISPATCHED
    page = Browser(client).post("/status", {"reference": reference.lower(), "postcode": "sw1a2aa"})
    assert page.status_code == 200
    text = page.body.decode()
    assert "Your kit has been posted" in text and "RM123456789GB" in text and "Royal Mail" in text


def test_the_status_page_refuses_wrong_pairs_exactly_alike(client, holders):
    reference = free_order(holders)
    browser = Browser(client)  # one visitor trying both: only the cause differs
    unknown = browser.post("/status", {"reference": "TK-00000-00000", "postcode": "SW1A 2AA"})
    wrong = browser.post("/status", {"reference": reference, "postcode": "SW1A 1AA"})
    assert unknown.status_code == wrong.status_code == 400
    assert unknown.body.decode().replace("TK-00000-00000", "R").replace("SW1A 2AA", "P") == wrong.body.decode().replace(
        reference, "R"
    ).replace("SW1A 1AA", "P")
    assert sorted(unknown.headers.items()) == sorted(wrong.headers.items())
    assert "We could not find an order with that reference" in unknown.body.decode()
    right = Browser(client).post("/status", {"reference": reference, "postcode": "SW1A 2AA"})
    assert "Your order is confirmed" in right.body.decode()
