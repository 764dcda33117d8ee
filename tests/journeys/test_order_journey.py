"""The holder's journey through chalice.test.Client, on the real adapters: moto for AWS and the
local Stripe emulator through the official SDK. Each ends where the manufacturer starts: the
message on the SQS FIFO fulfilment queue."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import jsonschema
import pytest

from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.domain.times import to_iso
from tests.builders import NOW, days_from_now, delivery_form, load_register, register_row
from tests.conftest import TEST_SECRETS
from tests.journeys.browser import Browser, deliver_webhook, location_path

SECRET = TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]
REFERENCE_IN_PAGE = re.compile(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}")


@pytest.fixture
def register(deps):
    load_register(
        deps,
        register_row("FA/1001", "SW1A 2AA"),
        register_row("SG/1002", "E1 6AN", certificate_type="shotgun"),  # free-kit district
        register_row("FA/1003", "SW1A 2AA", free_kit="yes"),
        register_row("FA/1004", "SW1A 2AA", status="expired"),
        register_row("FA/1005", "SW1A 2AA", status="revoked"),
        register_row("FA/1006", "SW1A 2AA", status="surrendered"),
        register_row("FA/1007", "SW1A 2AA", status="cancelled"),
        register_row("FA/1008", "SW1A 2AA", expiry_date=days_from_now(-1).isoformat()),
    )
    return deps


SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "fulfilment-message.v1.json").read_text())


def assert_matches_schema(messages: list[dict]) -> None:
    """Every message leaving tracekit has exactly the schema's fields (additionalProperties: false)."""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for message in messages:
        validator.validate(message)


def queued_messages(settings) -> list[dict]:
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    messages = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=settings.fulfilment_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=settings.fulfilment_queue_url, ReceiptHandle=m["ReceiptHandle"])


def answer_questions(browser: Browser, reference: str, postcode: str, **delivery):
    assert browser.get("/").status_code == 200
    assert browser.get("/order/certificate").status_code == 200
    checked = browser.post("/order/certificate", {"reference": reference, "postcode": postcode})
    assert checked.status_code == 303 and location_path(checked) == "/order/delivery"
    given = browser.post("/order/delivery", delivery_form(**delivery))
    assert given.status_code == 303 and location_path(given) == "/order/check-answers"
    return browser.get("/order/check-answers")


def test_a_paid_order_from_start_page_to_the_manufacturers_queue(client, register, stripe_emulator, settings):
    browser = Browser(client)
    answers = answer_questions(browser, "fa 1001", "sw1a2aa")
    assert "£8.95" in answers.body.decode() and "Ada Example" in answers.body.decode()

    to_stripe = browser.post("/order/confirm", {"confirm": "yes"})
    assert to_stripe.status_code == 303
    checkout_url = to_stripe.headers["Location"]
    assert checkout_url.startswith(stripe_emulator.base_url + "/c/pay/cs_test_")
    session_id = checkout_url.rsplit("/", 1)[-1]

    stripe_emulator.pay(session_id)
    completed = [e for e in stripe_emulator.events() if e["type"] == "checkout.session.completed"]
    assert len(completed) == 1 and completed[0]["data"]["object"]["amount_total"] == 895
    assert deliver_webhook(client, completed[0], SECRET).status_code == 200

    back = browser.get(f"/order/payment-complete?session_id={session_id}")
    page = back.body.decode()
    assert back.status_code == 200 and "Order complete" in page and "You paid £8.95" in page
    reference = REFERENCE_IN_PAGE.search(page).group(0)
    assert completed[0]["data"]["object"]["client_reference_id"] == reference

    order = register.orders.get(reference)
    assert (order.state, order.payment, order.fulfilment) == (
        OrderState.CONFIRMED,
        PaymentState.PAID,
        FulfilmentState.RELEASED,
    )
    messages = queued_messages(settings)
    assert_matches_schema(messages)
    assert messages == [
        {
            "schema_version": 1,
            "fulfilment_id": "F-" + reference.removeprefix("TK-"),
            "created_at": to_iso(NOW),
            "order_reference": reference,
            "product_code": "PMK-1",
            "quantity": 1,
            "recipient": {
                "name": "Ada Example",
                "address_lines": ["1 Test Street"],
                "town": "London",
                "postcode": "SW1A 2AA",
            },
        }
    ]


@pytest.mark.parametrize("reference, postcode", [("SG1002", "E1 6AN"), ("FA/1003", "SW1A 2AA")])
def test_a_free_order_from_start_page_to_the_manufacturers_queue(
    client, register, stripe_emulator, settings, reference, postcode
):
    browser = Browser(client)
    answers = answer_questions(browser, reference, postcode, address_line_2="Flat 2")
    assert "Your kit is free" in answers.body.decode()

    confirmed = browser.post("/order/confirm", {"confirm": "yes"})
    assert location_path(confirmed) == "/order/confirmation"
    page = browser.get("/order/confirmation").body.decode()
    order_reference = REFERENCE_IN_PAGE.search(page).group(0)
    assert "Order complete" in page and "Your kit is free" in page
    # The address given was ada@example.com: masked, so a shared screen does not show it.
    assert "We are sending a confirmation email to a***@example.com." in page and "ada@example.com" not in page

    assert stripe_emulator.events() == []
    [message] = queued_messages(settings)
    assert_matches_schema([message])
    assert message["order_reference"] == order_reference
    assert message["recipient"]["address_lines"] == ["1 Test Street", "Flat 2"]


def test_the_webhook_delivered_twice_gives_one_message(client, register, stripe_emulator, settings):
    browser = Browser(client)
    answer_questions(browser, "FA1001", "SW1A 2AA")
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    stripe_emulator.pay(session_id)
    [event] = [e for e in stripe_emulator.events() if e["type"] == "checkout.session.completed"]

    assert deliver_webhook(client, event, SECRET).status_code == 200
    assert deliver_webhook(client, event, SECRET).status_code == 200

    messages = queued_messages(settings)
    assert len(messages) == 1
    order = register.orders.get(messages[0]["order_reference"])
    assert order.payment is PaymentState.PAID and order.processed_events == {event["id"]}


@pytest.mark.parametrize("signature", ["", "t=1,v1=deadbeef", None])
def test_a_bad_or_missing_webhook_signature_is_rejected_with_nothing_changed(
    client, register, stripe_emulator, settings, signature
):
    browser = Browser(client)
    answer_questions(browser, "FA1001", "SW1A 2AA")
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    stripe_emulator.pay(session_id)
    [event] = [e for e in stripe_emulator.events() if e["type"] == "checkout.session.completed"]
    reference = event["data"]["object"]["client_reference_id"]
    before = register.orders.get(reference)

    if signature is None:  # signed, but with somebody else's secret
        response = deliver_webhook(client, event, "whsec_not_ours")
    else:
        response = deliver_webhook(client, event, SECRET, signature=signature)

    assert response.status_code == 400
    assert register.orders.get(reference) == before
    assert queued_messages(settings) == []


REFUSALS = {
    "unknown reference": ("FA/9999", "SW1A 2AA"),
    "wrong postcode": ("FA/1001", "SW1A 1AA"),
    "expired": ("FA/1004", "SW1A 2AA"),
    "revoked": ("FA/1005", "SW1A 2AA"),
    "surrendered": ("FA/1006", "SW1A 2AA"),
    "cancelled": ("FA/1007", "SW1A 2AA"),
    "past its expiry date": ("FA/1008", "SW1A 2AA"),
}


def test_every_refused_certificate_check_gets_the_same_response(client, register):
    already = Browser(client)
    answer_questions(already, "FA/1003", "SW1A 2AA")
    already.post("/order/confirm", {"confirm": "yes"})
    refusals = {**REFUSALS, "already ordered": ("FA/1003", "SW1A 2AA")}
    responses, visitor = {}, Browser(client)  # one visitor trying every cause: only the cause differs
    for case, (reference, postcode) in refusals.items():
        response = visitor.post("/order/certificate", {"reference": reference, "postcode": postcode})
        body = response.body.decode().replace(reference, "REF").replace(postcode, "PC")
        responses[case] = (response.status_code, sorted(response.headers.items()), body)
    first = responses["unknown reference"]
    assert first[0] == 400 and "We could not match that certificate reference and postcode" in first[2]
    for case, response in responses.items():
        assert response == first, case


def test_a_second_order_on_the_same_certificate_is_refused(client, register, settings):
    first = Browser(client)
    answer_questions(first, "FA/1003", "SW1A 2AA")
    assert location_path(first.post("/order/confirm", {"confirm": "yes"})) == "/order/confirmation"

    second = Browser(client)
    refused = second.post("/order/certificate", {"reference": "FA/1003", "postcode": "SW1A 2AA"})
    assert refused.status_code == 400 and "We could not match" in refused.body.decode()
    assert len(queued_messages(settings)) == 1


def test_a_confirmation_racing_past_the_check_is_refused_at_the_claim(client, register, settings):
    early, late = Browser(client), Browser(client)
    answer_questions(early, "FA/1003", "SW1A 2AA")
    answer_questions(late, "FA/1003", "SW1A 2AA")
    assert location_path(early.post("/order/confirm", {"confirm": "yes"})) == "/order/confirmation"
    refused = late.post("/order/confirm", {"confirm": "yes"})
    page = refused.body.decode()
    assert refused.status_code == 409 and "already been ordered" in page
    assert 'href="/status"' in page and "Firearms Enquiry Team" in page and "Licensing Unit" not in page
    assert len(queued_messages(settings)) == 1


def test_confirming_again_returns_to_the_same_checkout_session(client, register, stripe_emulator):
    browser = Browser(client)
    answer_questions(browser, "FA1001", "SW1A 2AA")
    first = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"]
    again = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"]
    assert first == again


def test_form_errors_are_summarised_and_shown_by_each_field(client, register):
    browser = Browser(client)
    bad = browser.post("/order/certificate", {"reference": "", "postcode": "nowhere"})
    page = bad.body.decode()
    assert bad.status_code == 400 and "<title>Error: " in page
    assert 'href="#reference"' in page and 'href="#postcode"' in page and "Enter a full UK postcode" in page
    browser.post("/order/certificate", {"reference": "FA1001", "postcode": "SW1A2AA"})
    bad = browser.post("/order/delivery", delivery_form(full_name="", town="", email="not-an-email"))
    page = bad.body.decode()
    assert "Enter your full name" in page and "Enter town or city" in page and "correct format" in page
    assert 'value="1 Test Street"' in page


def test_pages_after_the_check_need_a_journey(client, register):
    assert location_path(client.http.get("/order/delivery")) == "/order/certificate?answers=lost"
    assert location_path(client.http.get("/order/check-answers")) == "/order/certificate?answers=lost"
    tampered = client.http.get("/order/check-answers", headers={"Cookie": "tk_journey=gAAAAAnonsense"})
    assert location_path(tampered) == "/order/certificate?answers=lost"
    told = client.http.get("/order/certificate?answers=lost").body.decode()
    assert "We could not find your earlier answers" in told
    assert "We could not find your earlier answers" not in client.http.get("/order/certificate").body.decode()


def test_nothing_personal_is_in_a_url_or_readable_in_the_cookie(client, register):
    browser = Browser(client)
    answer_questions(browser, "FA1001", "SW1A 2AA")
    for fragment in ("Ada", "Test Street", "SW1A", "FA1001", "ada@example.com"):
        assert fragment not in browser.cookie
    location = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"]
    assert "Ada" not in location and "SW1A" not in urlsplit(location).query


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}])
def test_a_cross_site_or_tokenless_post_is_refused(client, register, headers):
    browser = Browser(client)
    browser.get("/order/certificate")
    token = "" if not headers else browser.csrf  # with no hostile header, it is the missing token that gives it away
    response = client.http.post(
        "/order/certificate",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser.cookie, **headers},
        body=f"reference=FA1001&postcode=SW1A2AA&csrf_token={token}",
    )
    assert response.status_code == 403 and "This form has expired" in response.body.decode()
    assert "Set-Cookie" not in response.headers


def test_every_page_carries_the_security_headers(client, register, settings):
    browser = Browser(client)
    for path in (
        "/",
        "/order/certificate",
        "/status",
        "/order/delivery",
        "/order/check-answers",
        "/order/confirmation",
        "/privacy",
        "/accessibility",
        "/cookies",
    ):
        response = browser.get(path)
        for header in (
            "Content-Security-Policy",
            "Strict-Transport-Security",
            "X-Content-Type-Options",
            "X-Frame-Options",
            "Referrer-Policy",
            "Cache-Control",
        ):
            assert header in response.headers, (path, header)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "script-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Security-Policy"].endswith(f"; form-action 'self' {settings.checkout_origin}")
        assert response.headers["Cache-Control"] == "no-store"


def test_the_start_page_names_the_service_once_in_its_title(client, register):
    page = client.http.get("/").body.decode()
    assert "<title>Order a property-marking kit – Metropolitan Police</title>" in page


def test_the_order_page_helpers_write_dates_and_addresses_as_the_holder_should_see_them():
    from datetime import date

    from chalicelib.web.order_status import gov_uk_date, masked_email

    assert gov_uk_date(date(2026, 12, 1)) == "1 December 2026"
    assert gov_uk_date(date(2026, 11, 30)) == "30 November 2026"
    assert masked_email("sam@example.com") == "s***@example.com"
    assert masked_email("a.b@c@example.com") == "a***@example.com"


def test_the_already_ordered_page_gives_the_campaigns_contact_when_one_is_configured():
    from chalicelib.web.pages import render

    page = render("already_ordered.html", contact_email="enquiries@tracekit.invalid").body
    assert 'href="mailto:enquiries@tracekit.invalid"' in page and 'href="/status"' in page


def test_a_refused_certificate_check_a_lockout_included_gives_the_campaigns_contact():
    from chalicelib.web.errors import NOT_MATCHED
    from chalicelib.web.pages import render

    refused = {"reference": NOT_MATCHED}
    context = {"form": {}, "back": "/", "csrf_token": "t", "not_matched": NOT_MATCHED}
    page = render("certificate.html", errors=refused, contact_email="enquiries@tracekit.invalid", **context).body
    assert 'href="mailto:enquiries@tracekit.invalid"' in page
    other = render("certificate.html", errors={"reference": "Enter it"}, contact_email="e@x.invalid", **context).body
    assert "mailto:" not in other  # only a refusal of the check itself, not a missing answer


def test_a_rejected_or_returned_orders_status_says_what_happens_next_with_the_contact():
    import dataclasses

    from chalicelib.domain.orders import FulfilmentState
    from chalicelib.web.order_status import holder_view
    from chalicelib.web.pages import render
    from tests.unit.test_lifecycle import _released

    for state in (FulfilmentState.REJECTED, FulfilmentState.RETURNED):
        order = dataclasses.replace(_released(), fulfilment=state, rejection_reason="no such street")
        view = holder_view(order)
        assert "We will be in touch." not in view["detail"] and "agree what happens next" in view["detail"]
        page = render("status.html", order=order, view=view, contact_email="enquiries@tracekit.invalid").body
        assert 'href="mailto:enquiries@tracekit.invalid"' in page and "no such street" not in page
