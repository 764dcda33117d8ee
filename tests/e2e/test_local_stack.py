"""`make run`'s stack, started as a newcomer starts it, driven over real HTTP: the paid journey
through the emulator's hosted page (its webhook reaching the app over the network), then a free
one, each ending with the message on moto's SQS FIFO queue."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}")


@pytest.fixture(scope="module")
def stack():
    ports = {"app": free_port(), "moto": free_port(), "stripe": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.stack",
            "--app-port",
            str(ports["app"]),
            "--moto-port",
            str(ports["moto"]),
            "--stripe-port",
            str(ports["stripe"]),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = _read_until(process, "Demo certificates", timeout=90)
    yield {"app": f"http://127.0.0.1:{ports['app']}", "moto": f"http://127.0.0.1:{ports['moto']}", "banner": banner}
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("the stack exited:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return "".join(seen + [process.stdout.readline() for _ in range(6)])
    raise AssertionError("the stack did not start:\n" + "".join(seen))


def queued(stack) -> list[dict]:
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack["moto"],
        region_name="eu-west-2",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    url = sqs.get_queue_url(QueueName="tracekit-local-fulfilment-queue.fifo")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def order_up_to_payment(app: str, reference: str, postcode: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    assert browser.get(app + "/").status_code == 200
    browser.post(app + "/order/certificate", data={"reference": reference, "postcode": postcode})
    answers = browser.post(
        app + "/order/delivery",
        data={"full_name": "Sam Fictitious", "address_line_1": "2 Sample Road", "town": "London", "postcode": "N1 9AL"},
    )
    assert answers.url.endswith("/order/check-answers"), answers.url
    return browser, browser.post(app + "/order/confirm", data={"confirm": "yes"})


def test_the_stack_binds_loopback_and_prints_urls_and_demo_references(stack):
    banner = stack["banner"]
    for expected in (stack["app"], stack["moto"], "SYN/100001", "SYN/100002", "SYN/100004", "SYN/100005", "FICTITIOUS"):
        assert expected in banner
    assert "0.0.0.0" not in banner


def test_a_paid_order_through_the_hosted_checkout_page(stack):
    browser, checkout = order_up_to_payment(stack["app"], "SYN/100001", "N1 9AL")
    assert "/c/pay/cs_test_" in checkout.url and "£8.95" in checkout.text
    declined = browser.post(checkout.url + "/decline")
    assert declined.status_code == 402 and "declined" in declined.text
    paid = browser.post(checkout.url + "/pay")  # the emulator delivers the signed webhook, then redirects back
    assert paid.url.startswith(stack["app"] + "/order/payment-complete")
    assert "Order complete" in paid.text and "You paid £8.95" in paid.text
    reference = REFERENCE.search(paid.text).group(0)
    assert [m["order_reference"] for m in queued(stack)] == [reference]


def test_a_free_order_and_a_refused_certificate(stack):
    browser, confirmed = order_up_to_payment(stack["app"], "syn 100002", "se154qp")
    assert confirmed.url.endswith("/order/confirmation") and "Your kit is free" in confirmed.text
    assert [m["recipient"]["name"] for m in queued(stack)] == ["Sam Fictitious"]
    refused = requests.post(
        stack["app"] + "/order/certificate", data={"reference": "SYN/100004", "postcode": "NW3 2QG"}
    )
    assert refused.status_code == 400 and "We could not match" in refused.text
