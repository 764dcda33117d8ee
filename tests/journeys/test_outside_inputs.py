"""Inputs from outside tracekit, through chalice.test.Client on the real adapters (moto, the
Stripe emulator): bodies nested to exhaust the parser, partner text carrying control and
text-direction characters, and what the operator's CLI prints of stored text."""

from __future__ import annotations

import json
import logging
import threading

import click
import pytest
from click.testing import CliRunner

from chalicelib import safejson
from devstack.stripe_emulator import sign_webhook_payload
from ops.cli import main as cli
from tests.journeys.browser import Browser, signed_now
from tests.conftest import TEST_SECRETS
from tests.journeys.test_manufacturer import DISPATCH, call, fid, free_order
from tests.journeys.test_payment_events import SECRET, paid_order


DEEP = b"[" * 5000 + b"]" * 5000  # 10 KB, 5,000 levels: json.loads alone raises RecursionError


def post_raw(client, token, path: str, body: bytes):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = client.http.post(f"/manufacturer{path}", headers=headers, body=body)
    return response.status_code, json.loads(response.body or b"null")


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"reason": ' + DEEP + b"}", b'{"reason": "x", "more": ' + b'{"a":' * 2000 + b"1" + b"}" * 2001],
    ids=["deep array", "deep value", "deep object"],
)
def test_a_deeply_nested_body_is_refused_with_the_apis_error_shape(client, holders, token, body):
    reference = free_order(holders)
    for action in ("reject", "dispatch"):
        status, answer = post_raw(client, token, f"/fulfilment-orders/{fid(reference)}/{action}", body)
        assert status == 400, answer
        assert answer["error"] == "invalid request" and "nest deeper than 32" in answer["fields"]["body"]
    assert holders.orders.get(reference).rejection_reason is None


def test_a_wide_but_shallow_body_near_the_size_limit_is_still_read(client, holders, token):
    reference = free_order(holders)
    wide = {"reason": "address incomplete", "notes": [{"line": n, "seen": [n, n]} for n in range(450)]}
    body = json.dumps(wide).encode()
    assert 14_000 < len(body) < 16 * 1024 and safejson.nesting_depth(body) == 4
    status, answer = post_raw(client, token, f"/fulfilment-orders/{fid(reference)}/reject", body)
    assert status == 200 and answer["state"] == "rejected"
    assert holders.orders.get(reference).rejection_reason == "address incomplete"


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert safejson.nesting_depth(b'{"a": "[[[[{{{{\\"[[[["}') == 1
    assert safejson.nesting_depth(b"[]" * 5000) == 1
    with pytest.raises(safejson.TooDeep):
        safejson.loads(b'{"a": [[[1]]]}', 3)
    assert safejson.loads(b'{"a": [[["]]]]]"]]]}', 4) == {"a": [[["]]]]]"]]]}


def test_a_signed_webhook_nested_too_deep_is_refused_with_400_and_changes_nothing(client, holders, stripe_emulator):
    body = b'{"id": "evt_deep", "type": "checkout.session.completed", "data": {"object": ' + DEEP + b"}}"
    response = client.http.post(
        "/stripe/webhook",
        body=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_webhook_payload(body, SECRET, signed_now()),
        },
    )
    assert response.status_code == 400


def test_stripes_own_events_nest_well_inside_the_webhooks_limit(client, holders, stripe_emulator):
    """The limit is set from what Stripe sends: every event of a paid, refunded, disputed order."""
    _, order = paid_order(client, holders, stripe_emulator)
    stripe_emulator.refund(order.payment_intent_id, 100)
    stripe_emulator.dispute(order.payment_intent_id)
    sent = {event["type"]: json.dumps(event).encode() for event in stripe_emulator.events()}
    assert {"checkout.session.completed", "charge.refunded", "charge.dispute.created"} <= set(sent)
    assert max(safejson.nesting_depth(body) for body in sent.values()) <= safejson.STRIPE_EVENT_DEPTH // 8


FORGED_LINE = "address incomplete\n  2026-12-01T09:00:00Z  operator:alice      refunded in full"
REVERSED = "RM123\u202eBG987"


@pytest.mark.parametrize(
    "field, value",
    [
        ("reason", FORGED_LINE),
        ("reason", "wrong\tcolumn"),
        ("reason", "next\x85line"),
        ("reason", "turned \u2067around"),
        ("carrier", "Royal\u202eMail"),
        ("carrier", "Royal\x1b[31mMail"),
        ("tracking_reference", REVERSED),
        ("tracking_reference", "RM\u200f123"),
        ("tracking_reference", "RM\u061c123"),
    ],
)
def test_control_and_text_direction_characters_in_partner_text_are_refused_by_field(
    client,
    holders,
    token,
    field,
    value,
):
    reference = free_order(holders)
    action, body = ("reject", {"reason": value}) if field == "reason" else ("dispatch", {**DISPATCH, field: value})
    status, answer = call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/{action}", body)
    assert status == 400 and list(answer["fields"]) == [field], answer
    assert "control or text-direction characters" in answer["fields"][field]
    stored = holders.orders.get(reference)
    assert stored.rejection_reason is None and stored.dispatch is None


def test_plain_text_in_any_script_is_still_accepted(client, holders, token):
    reference = free_order(holders)
    dispatch = {**DISPATCH, "carrier": "Évri – Ελληνικά 😀", "tracking_reference": "رقم ١٢٣"}
    status, answer = call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", dispatch)
    assert status == 200 and answer["dispatch"]["carrier"] == "Évri – Ελληνικά 😀"


def test_order_show_prints_stored_text_with_its_control_characters_escaped(
    client, holders, stripe_emulator, environment, monkeypatch
):
    """Text stored before partner text was checked, or typed by an operator, cannot forge a line."""
    _, order = paid_order(client, holders, stripe_emulator)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    reason = "box crushed\n  2026-12-01T09:00:00Z  operator:mallory    refunded in full \u202e"
    ran = CliRunner().invoke(cli, ["refund", order.reference, "--amount", "100", "--reason", reason, "--operator", "a"])
    assert ran.exit_code == 0, ran.output
    shown = CliRunner().invoke(cli, ["order", "show", order.reference]).output
    assert "box crushed\\n  2026-12-01T09:00:00Z  operator:mallory" in shown and "\\u202e" in shown
    assert not any(line.lstrip().startswith("2026-12-01T09:00:00Z  operator:mallory") for line in shown.splitlines())
    assert "\u202e" not in shown


@pytest.mark.parametrize("reasons", ["the same", "each its own"])
def test_five_concurrent_refunds_give_one_refund_and_every_other_run_one_clear_line(
    client, holders, stripe_emulator, environment, monkeypatch, reasons
):
    """Five operators (or one, five times) at once: 500 of 895 pence can be refunded once only.
    The same reason is one idempotency key; different reasons are different refunds, of which
    Stripe refuses those that find the money already gone."""
    _, order = paid_order(client, holders, stripe_emulator)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    start, outcomes = threading.Barrier(5), []

    def run(number: int) -> None:
        reason = "box crushed" + ("" if reasons == "the same" else f" ({number})")
        args = ["refund", order.reference, "--amount", "500", "--reason", reason, "--operator", f"op{number}"]
        start.wait()
        try:
            cli.main(args, prog_name="ops", standalone_mode=False)
            outcomes.append("refunded")
        except click.ClickException as exc:
            outcomes.append(exc.format_message())
        except Exception as exc:  # noqa: BLE001 - what the operator would have seen as a traceback
            outcomes.append(f"traceback: {type(exc).__module__}.{type(exc).__name__}")

    threads = [threading.Thread(target=run, args=(number,)) for number in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 5 and not [o for o in outcomes if o.startswith("traceback")], outcomes
    assert all("\n" not in outcome for outcome in outcomes) and "refunded" in outcomes, outcomes
    assert [r.amount for r in stripe_refunds(stripe_emulator, order.payment_intent_id)] == [500]
    assert holders.orders.get(order.reference).refunded_pence == 500


def test_a_stripe_error_is_one_line_and_a_failing_exit_status(
    client, holders, stripe_emulator, environment, monkeypatch
):
    _, order = paid_order(client, holders, stripe_emulator)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    stripe_emulator.refund(order.payment_intent_id, order.amount.pence)  # refunded in the dashboard, not yet heard of
    ran = CliRunner().invoke(cli, ["refund", order.reference, "--amount", "100", "--reason", "late", "--operator", "a"])
    assert ran.exit_code == 1 and ran.exception is None or isinstance(ran.exception, SystemExit), ran.exception
    [line] = ran.output.strip().splitlines()
    assert line.startswith("Error: Stripe refused (InvalidRequestError") and "Traceback" not in ran.output


def stripe_refunds(emulator, payment_intent_id: str) -> list:
    import stripe

    sdk = stripe.StripeClient(TEST_SECRETS["STRIPE_SECRET_KEY"], base_addresses={"api": emulator.base_url})
    return list(sdk.v1.refunds.list(params={"payment_intent": payment_intent_id}).data)


MARKER = "Ada-Lovelace-12-Test-Street-SW1A-2AA"


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": f"cross-site {MARKER}"}, {"Sec-Fetch-Site": MARKER}, {"Origin": f"https://{MARKER}.example"}],
)
def test_a_refused_forms_log_says_which_header_did_not_match_never_its_value(client, holders, headers, caplog):
    browser = Browser(client)
    browser.get("/order/certificate")
    with caplog.at_level(logging.INFO):
        response = client.http.post(
            "/order/certificate",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser.cookie, **headers},
            body=f"reference=FA2000&postcode=SW1A2AA&csrf_token={browser.csrf}",
        )
    assert response.status_code == 403
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "form refused" in logged and MARKER not in logged and MARKER.lower() not in logged.lower()
