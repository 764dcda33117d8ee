"""`make run`'s stack, started as a newcomer starts it, driven over real HTTP: the paid journey
through the emulator's hosted page (its webhook reaching the app over the network), then a free
one, each ending with the message on moto's SQS FIFO queue."""

from __future__ import annotations

import re
import time

import requests

from tests.e2e.conftest import queued

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
