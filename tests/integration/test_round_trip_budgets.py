"""The physical minimum of round trips, counted through botocore's before-send event (AWS) and the
Stripe emulator's request log (Stripe)."""

from __future__ import annotations

import dataclasses

from chalicelib.adapters.dynamodb import build_models
from chalicelib.adapters.dynamodb_register import DynamoRegister
from chalicelib.bootstrap import tables_for
from tests.builders import delivery_form, load_register, register_row
from tests.conftest import TEST_SECRETS
from tests.journeys.browser import Browser, deliver_webhook


def test_certificate_check_costs_at_most_two_dynamodb_requests(client, deps, aws_requests):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    for reference in ("FA/1001", "FA/9999"):  # a pass and a refusal
        aws_requests.reset()
        Browser(client).post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
        assert 1 <= aws_requests.total("dynamodb") <= 2, aws_requests.calls
        assert aws_requests.total() == aws_requests.total("dynamodb")


def test_the_first_check_after_an_import_reads_the_new_generation_for_one_more_request(client, deps, aws_requests):
    """A container guesses the generation it last saw live and the same request checks the guess:
    no check is answered from a generation that is no longer live, even in the same instant (the
    clock the app reads stands still here). A wrong guess costs one more request, once per
    container per import."""
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    holder = Browser(client)
    assert holder.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"}).status_code == 303
    operator = dataclasses.replace(deps, register=DynamoRegister(build_models(tables_for(deps.settings))))
    load_register(operator, register_row("FA/1001", "SW1A 2AA", status="revoked"), register_row("FA/1002", "SW1A 2AA"))
    aws_requests.reset()
    assert (
        Browser(client).post("/order/certificate", {"reference": "FA/1002", "postcode": "SW1A 2AA"}).status_code == 303
    )
    assert aws_requests.calls == {("dynamodb", "TransactGetItems"): 2}
    aws_requests.reset()
    assert (
        Browser(client).post("/order/certificate", {"reference": "FA/1003", "postcode": "SW1A 2AA"}).status_code == 400
    )
    assert aws_requests.calls[("dynamodb", "TransactGetItems")] == 1  # back to one: the guess is right
    assert (
        Browser(client).post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"}).status_code == 400
    )


def test_confirming_a_paid_order_costs_two_dynamodb_requests_and_one_stripe_call(
    client, deps, aws_requests, stripe_emulator
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    aws_requests.reset()
    before = len(stripe_emulator.api_requests())
    assert browser.post("/order/confirm", {"confirm": "yes"}).status_code == 303
    assert 1 <= aws_requests.total("dynamodb") <= 2, aws_requests.calls
    assert stripe_emulator.api_requests()[before:] == [("POST", "/v1/checkout/sessions")]


def test_confirming_a_free_order_costs_three_dynamodb_requests_the_queue_send_and_the_email(client, deps, aws_requests):
    load_register(deps, register_row("FA/1002", "SW1A 2AA", free_kit="yes"))
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1002", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    aws_requests.reset()
    browser.post("/order/confirm", {"confirm": "yes"})
    # the order and its claim; the release, with the email in the outbox; the email out of it
    assert aws_requests.total("dynamodb") <= 3, aws_requests.calls
    assert aws_requests.calls[("sqs", "SendMessage")] == 1 and aws_requests.total("ses") == 1


def test_the_webhook_for_a_paid_order_costs_at_most_four_aws_requests(client, deps, aws_requests, stripe_emulator):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    stripe_emulator.pay(session_id)
    [event] = [e for e in stripe_emulator.events() if e["type"] == "checkout.session.completed"]
    aws_requests.reset()
    assert deliver_webhook(client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]).status_code == 200
    # the payment, the message to the kit maker, its release mark (which puts the holder's email in
    # the order's outbox, held by this call); then the one email, and taking it out of the outbox
    assert aws_requests.total() - aws_requests.total("ses") <= 4, aws_requests.calls
    assert aws_requests.calls[("sqs", "SendMessage")] == 1 and aws_requests.total("ses") == 1
