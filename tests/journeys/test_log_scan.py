"""Every journey, then a scan of every log line: no certificate reference, postcode, name,
address or email may appear. And the lines are JSON with a correlation id."""

from __future__ import annotations

import json
import logging

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from chalicelib.web.logs import JsonFormatter, correlation_id
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_manufacturer import DISPATCH
from tests.journeys.test_payment_events import deliver, events

PERSONAL = (
    "FA/1001",
    "FA1001",
    "FA/1002",
    "FA1002",
    "SW1A 2AA",
    "SW1A2AA",
    "sw1a2aa",
    "Ada",
    "Example",
    "Test Street",
    "London",
    "ada@example.com",
)


def test_no_journey_writes_personal_data_to_any_log(client, deps, stripe_emulator, caplog):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA", free_kit="yes"))
    with caplog.at_level(logging.DEBUG):
        for reference in ("FA/1001", "FA/1002"):
            browser = Browser(client)
            browser.post("/order/certificate", {"reference": "fa 9999", "postcode": "sw1a2aa"})  # a refusal
            browser.post("/order/certificate", {"reference": reference, "postcode": "sw1a2aa"})
            browser.post("/order/delivery", delivery_form())
            to = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"]
            if "/c/pay/" in to:
                stripe_emulator.pay(to.rsplit("/", 1)[-1])
                deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])
            page = browser.get("/order/confirmation").body.decode()
            order_reference = page.split("<strong>")[1].split("</strong>")[0]
            Browser(client).post("/status", {"reference": order_reference, "postcode": "SW1A 2AA"})
        token = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
        listed = client.http.get("/manufacturer/fulfilment-orders", headers={"Authorization": f"Bearer {token}"})
        for item in listed.json_body["fulfilment_orders"]:
            client.http.post(
                f"/manufacturer/fulfilment-orders/{item['fulfilment_id']}/dispatch",
                body=json.dumps(DISPATCH),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
    lines = [record.getMessage() for record in caplog.records]
    assert any("order placed" in line for line in lines) and any("refused" in line for line in lines)
    for line in lines:
        for personal in PERSONAL:
            assert personal not in line, (personal, line)


def test_log_lines_are_json_with_the_correlation_id():
    token = correlation_id.set("req-123")
    try:
        record = logging.LogRecord("tracekit", logging.INFO, __file__, 1, "order placed: %s", ("TK-AAAAA-BBBBB",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        correlation_id.reset(token)
    assert line["message"] == "order placed: TK-AAAAA-BBBBB" and line["correlation_id"] == "req-123"
    assert line["level"] == "INFO" and line["time"].endswith("Z")
