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
from chalicelib.services import finance
from chalicelib.services.credentials import create_api_key
from ops.cli import main as cli
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_finance import sections
from tests.journeys.test_manufacturer import DISPATCH
from tests.journeys.test_payment_events import deliver, events

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
    first, second, third = [o["fulfilment_id"] for o in listed.json_body["fulfilment_orders"]]
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
    for line in ("charges", "gross_pence", "fees_pence", "net_pence", "free_kits", "payment paid"):
        assert after[line] == before[line], line
