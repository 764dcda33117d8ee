"""The physical minimum of round trips, counted through botocore's before-send event (AWS) and the
Stripe emulator's request log (Stripe).

The budgets are DynamoDB's; KMS is counted beside them. A container seals with one data key it
makes on its first write (one GenerateDataKey, then none for MAX_KEY_AGE) and opens another
container's data key once (one Decrypt per data key, then none): a warm container adds no KMS
request to any step; a cold one adds one to the step that first seals or first opens."""

from __future__ import annotations

import dataclasses

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import build_models
from chalicelib.adapters.dynamodb_register import DynamoRegister
from chalicelib.bootstrap import tables_for
from chalicelib.domain.throttle import REFERENCE_LIMITS
from tests.builders import delivery_form, load_register, register_row
from tests.conftest import TEST_SECRETS
from tests.journeys.browser import Browser, deliver_webhook


def test_certificate_check_costs_two_dynamodb_requests_passed_refused_or_locked(client, deps, aws_requests):
    """The attempt's reservation, then the lookup: the same two on every path."""
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    visitor = Browser(client)
    attempts = [("FA/1001", "SW1A 2AA"), ("FA/9999", "SW1A 2AA")]  # a pass and a refusal
    attempts += [("FA/1001", "SW1A 1AA")] * REFERENCE_LIMITS.per_window + [("FA/1001", "SW1A 2AA")]  # then locked
    statuses = []
    for reference, postcode in attempts:
        aws_requests.reset()
        statuses.append(visitor.post("/order/certificate", {"reference": reference, "postcode": postcode}).status_code)
        assert aws_requests.calls == {("dynamodb", "TransactWriteItems"): 1, ("dynamodb", "TransactGetItems"): 1}
    assert statuses[0] == 303 and set(statuses[1:]) == {400}  # the last, the right answer, locked


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
    assert aws_requests.calls == {("dynamodb", "TransactWriteItems"): 1, ("dynamodb", "TransactGetItems"): 2}
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
    assert aws_requests.total() - aws_requests.total("dynamodb") == 1  # a cold container: its data key
    assert aws_requests.calls[("kms", "GenerateDataKey")] == 1


def test_a_warm_container_confirms_with_no_kms_request(client, deps, aws_requests, stripe_emulator):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA"))
    for reference in ("FA/1001", "FA/1002"):
        browser = Browser(client)
        browser.post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
        browser.post("/order/delivery", delivery_form())
        aws_requests.reset()
        assert browser.post("/order/confirm", {"confirm": "yes"}).status_code == 303
    assert 1 <= aws_requests.total("dynamodb") <= 2 and aws_requests.total() == aws_requests.total("dynamodb")


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
    # cold: the data key that seals the order; the release reads the answers it has, opening nothing
    assert aws_requests.total("kms") == aws_requests.calls[("kms", "GenerateDataKey")] == 1


def paid_event(client, deps, stripe_emulator, reference: str = "FA/1001") -> dict:
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    stripe_emulator.pay(session_id)
    return [e for e in stripe_emulator.events() if e["type"] == "checkout.session.completed"][-1]


def test_the_webhook_for_a_paid_order_costs_at_most_four_aws_requests(client, deps, aws_requests, stripe_emulator):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    event = paid_event(client, deps, stripe_emulator)
    aws_requests.reset()
    assert deliver_webhook(client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]).status_code == 200
    # the payment, the message to the kit maker, its release mark (which puts the holder's email in
    # the order's outbox, held by this call); then the one email, and taking it out of the outbox
    assert aws_requests.total("dynamodb") <= 3, aws_requests.calls
    assert aws_requests.total() - aws_requests.total("ses") <= 4, aws_requests.calls
    assert aws_requests.calls[("sqs", "SendMessage")] == 1 and aws_requests.total("ses") == 1
    assert aws_requests.total("kms") == 0  # the container that sealed the order opens it without KMS


def test_the_webhook_in_a_container_that_did_not_seal_the_order_opens_its_data_key_once(
    client, deps, aws_requests, stripe_emulator, settings
):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA"))
    events = [paid_event(client, deps, stripe_emulator, reference) for reference in ("FA/1001", "FA/1002")]
    bootstrap.use(bootstrap.build(settings, deps.clock))  # another container: none of its keys yet
    spent = []
    for event in events:
        aws_requests.reset()
        assert deliver_webhook(client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"]).status_code == 200
        assert aws_requests.total("dynamodb") <= 3, aws_requests.calls
        spent.append(dict(c for c in aws_requests.calls.items() if c[0][0] == "kms"))
    assert spent == [{("kms", "Decrypt"): 1}, {}]  # cold: the writer's data key, once; then warm
