"""`make run`'s stack, started as a newcomer starts it, driven over real HTTP: the paid journey
through the emulator's hosted page (its webhook reaching the app over the network), then a free
one, each ending with the message on moto's SQS FIFO queue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import requests

from tests.e2e.conftest import ROOT, queued

REFERENCE = re.compile(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}")


def order_up_to_payment(app: str, reference: str, postcode: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    assert browser.get(app + "/").status_code == 200
    token = form_token(browser.get(app + "/order/certificate").text)
    browser.post(app + "/order/certificate", data={"reference": reference, "postcode": postcode, "csrf_token": token})
    answers = browser.post(
        app + "/order/delivery",
        data={
            "full_name": "Sam Fictitious",
            "address_line_1": "2 Sample Road",
            "town": "London",
            "postcode": "N1 9AL",
            "csrf_token": token,
        },
    )
    assert answers.url.endswith("/order/check-answers"), answers.url
    return browser, browser.post(app + "/order/confirm", data={"confirm": "yes", "csrf_token": token})


def form_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)


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
    visitor = requests.Session()
    token = form_token(visitor.get(stack["app"] + "/order/certificate").text)
    refused = visitor.post(
        stack["app"] + "/order/certificate",
        data={"reference": "SYN/100004", "postcode": "NW3 2QG", "csrf_token": token},
    )
    assert refused.status_code == 400 and "We could not match" in refused.text


def test_the_stack_runs_the_scheduled_handlers_itself(stack):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("lapsed holds swept" in line for line in stack["output"]):
        time.sleep(0.2)
    assert any("lapsed holds swept" in line for line in stack["output"])


def test_a_path_with_no_route_gets_the_404_page_api_gateway_is_configured_to_send(stack):
    """chalice local alone answers 403 {"message": "Missing Authentication Token"}, as API Gateway
    does by default; tracekit's gateway response, served here by devstack.local_api, is a page."""
    from chalicelib.web.pages import SECURITY_HEADERS

    for path in ("/no-such-page", "/order/no-such-step", "/manufacturer/no-such-resource", "/assets/none.css"):
        answer = requests.get(stack["app"] + path, timeout=10)
        assert answer.status_code == 404, path
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert {name: answer.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
        assert '<h1 class="govuk-heading-l">Page not found</h1>' in answer.text
        assert "Missing Authentication Token" not in answer.text
    assert requests.get(stack["app"] + "/status", timeout=10).status_code == 200  # routes still route


def test_the_operator_cli_runs_against_the_stack_from_its_written_file_alone(stack, tmp_path):
    """No variable but the file's name: the stack wrote everything the CLI needs, secrets included."""
    operator_file = stack["operator_file"]
    assert operator_file.stat().st_mode & 0o777 == 0o600
    assert f"reads {operator_file} (named by TRACEKIT_ENV_FILE)" in stack["banner"]
    bare = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "TRACEKIT_ENV_FILE": str(operator_file)}

    def ops(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ops", *args], cwd=ROOT, env={**bare, **extra}, capture_output=True, text=True
        )

    created = ops("keys", "create", "--scope", "manufacturer", "--label", "Kit Maker Ltd")
    assert created.returncode == 0, created.stderr
    polled = ops(
        "manufacturer",
        "poll",
        "--no-accept",
        "--out-dir",
        str(tmp_path),
        TRACEKIT_MANUFACTURER_KEY=created.stdout.strip(),
    )
    assert polled.returncode == 0 and "fulfilment orders written" in polled.stderr + polled.stdout, polled.stderr
    today = time.strftime("%Y-%m-%d", time.gmtime())
    period = ["--from", today, "--to", time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))]
    exported = ops("finance", "export", *period, "--out", str(tmp_path / "reconciliation.csv"), "--quiet")
    assert exported.returncode == 0 and "rows" in exported.stdout, exported.stderr
    for secret in ("REGISTER_KEY", "JOURNEY_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert secret not in created.stdout + created.stderr + exported.stdout + exported.stderr


def test_the_mail_folder_starts_empty_and_moto_logs_no_access_lines(stack):
    assert not (stack["mail"] / "001-an-earlier-run.txt").exists()
    assert not any('"POST / HTTP/1.1"' in line for line in stack["output"])  # moto's DynamoDB and SQS calls
