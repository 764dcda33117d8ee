"""Support's side of an order: a paid order the kit maker rejects is on the work list as such, and
the holder's emails can be sent again, read here from what SES sent; a rejected order is resolved
by cancelling it (refunded, the holder told) and keeps its address until then."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from chalicelib import services
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.services.support import resend, resolve_cancel, support_cases
from ops.cli import main as cli
from tests.journeys.test_email import assert_nothing_about_the_certificate, sent
from tests.journeys.test_manufacturer import DISPATCH, call, fid, free_order
from tests.journeys.test_payment_events import paid_order
from tests.journeys.test_privacy import scheduled


def test_a_paid_order_the_kit_maker_rejects_is_on_the_work_list_as_paid(client, holders, stripe_emulator, token):
    _, order = paid_order(client, holders, stripe_emulator)
    body = {"reason": "address not found"}
    status, _ = call(client, token, "POST", f"/fulfilment-orders/{fid(order.reference)}/reject", body)
    assert status == 200
    [case] = support_cases(holders)
    assert (case.reference, case.why) == (order.reference, "paid order rejected")
    assert case.since == holders.orders.get(order.reference).rejected_at


def test_a_dispatch_email_resent_by_support_is_the_dispatch_email_again(client, holders, token, settings):
    reference = free_order(holders, email="sam@example.com")
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    for _ in range(2):  # the same request twice: one more email
        resend(reference, "dispatch", "alex", "holder deleted it", holders)
    confirmation, dispatch, again = sent(settings)
    assert again == dispatch and again["to"] == ["sam@example.com"]
    assert "Tracking reference: RM123456789GB" in again["body"]
    assert_nothing_about_the_certificate(again)
    assert holders.orders.get(reference).history[-1].actor == "operator:alex"


def test_a_parcel_returned_to_sender_is_on_the_work_list_with_the_kit_makers_reason(client, holders, token):
    reference = free_order(holders)
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    assert support_cases(holders) == []
    body = {"reason": "addressee gone away"}
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/returned", body)[0] == 200
    [case] = support_cases(holders)
    stored = holders.orders.get(reference)
    assert (case.reference, case.why, case.since) == (reference, "returned to sender", stored.returned_at)
    assert stored.return_reason == "addressee gone away"


# -- Support resolves a rejected order by cancelling it (issue 15) ----------------------------------


def resolve(environment, monkeypatch, reference: str, *options: str):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = ["support", "resolve", reference, *options, "--operator", "alice", "--reason", "address does not exist"]
    return CliRunner().invoke(cli, args)


def test_a_paid_order_rejected_then_cancelled_by_support_is_refunded_once_and_may_order_again(
    client, holders, stripe_emulator, token, settings, environment, monkeypatch
):
    _, order = paid_order(client, holders, stripe_emulator)
    body = {"reason": "no such street in Bristol"}
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(order.reference)}/reject", body)[0] == 200
    told = sent(settings)[-1]
    assert "could not send" in told["subject"] and "no such street" not in told["body"]
    assert_nothing_about_the_certificate(told)

    first = resolve(environment, monkeypatch, order.reference, "--cancel")
    assert first.exit_code == 0, first.output
    assert "cancelled, payment refunded" in first.output
    again = resolve(environment, monkeypatch, order.reference, "--cancel")
    assert again.exit_code == 0 and "nothing more done" in again.output

    stored = holders.orders.get(order.reference)
    assert (stored.state, stored.fulfilment, stored.payment) == (
        OrderState.CANCELLED,
        FulfilmentState.CANCELLED,
        PaymentState.REFUNDED,
    )
    assert holders.payments.money_view(order.payment_intent_id).amount_refunded == 895
    assert [r for r in stripe_emulator.api_requests() if r == ("POST", "/v1/refunds")] == [("POST", "/v1/refunds")]
    resolved = [e for e in stored.history if e.actor == "operator:alice"]
    assert len(resolved) == 1 and "address does not exist" in resolved[0].change
    assert support_cases(holders) == []
    cancelled = [m for m in sent(settings) if "cancelled" in m["subject"]]
    assert len(cancelled) == 1 and "refunding" in cancelled[0]["body"] and "as you asked" not in cancelled[0]["body"]
    assert_nothing_about_the_certificate(cancelled[0])
    assert not services.check_certificate("FA/1001", "SW1A 2AA", holders).price.is_free  # may order again


def test_resolving_an_order_that_does_not_need_support_is_refused(client, holders, environment, monkeypatch):
    reference = free_order(holders)
    refused = resolve(environment, monkeypatch, reference, "--cancel")
    assert refused.exit_code == 1 and "not resolved" in refused.output and "not waiting for support" in refused.output
    unchosen = resolve(environment, monkeypatch, reference)
    assert unchosen.exit_code != 0 and "--cancel" in unchosen.output
    assert holders.orders.get(reference).fulfilment is FulfilmentState.RELEASED


def test_a_rejected_order_keeps_its_address_through_the_retention_job_until_support_resolves_it(client, holders, token):
    reference = free_order(holders)
    assert (
        call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/reject", {"reason": "no such street"})[0]
        == 200
    )
    start = holders.clock()
    holders.clock.set(start + timedelta(days=holders.settings.retention_days + 30))
    scheduled(client, "purge_personal_data")
    assert holders.orders.get(reference).erased_at is None  # support still needs the address

    resolve_cancel(reference, "alice", "holder unreachable", holders)
    resolved_at = holders.clock()
    holders.clock.set(resolved_at + timedelta(days=holders.settings.retention_days - 1))
    scheduled(client, "purge_personal_data")
    assert holders.orders.get(reference).erased_at is None  # the usual period, from the resolution
    holders.clock.set(resolved_at + timedelta(days=holders.settings.retention_days + 1))
    scheduled(client, "purge_personal_data")
    assert holders.orders.get(reference).erased_at is not None


def test_a_rejected_order_the_index_still_lists_as_due_is_not_erased_by_the_purge(client, holders, token):
    """An order rejected before rejections waited for support kept the purge date its write
    computed then; the purge decides again from the order, so its address stays."""
    import boto3

    from chalicelib.domain.times import to_iso

    reference = free_order(holders)
    assert (
        call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/reject", {"reason": "no such street"})[0]
        == 200
    )
    table = boto3.resource(
        "dynamodb", endpoint_url=holders.settings.aws_endpoint_url, region_name=holders.settings.region
    ).Table(holders.settings.orders_table)
    stale = to_iso(holders.clock() + timedelta(days=1))  # as the old code wrote it: due a day later
    table.update_item(
        Key={"order_ref": reference},
        UpdateExpression="SET erasure_due = :y, erase_after = :at",
        ExpressionAttributeValues={":y": "yes", ":at": stale},
    )
    holders.clock.set(holders.clock() + timedelta(days=2))
    assert reference in holders.orders.erasure_due(holders.clock())  # the index lists it
    scheduled(client, "purge_personal_data")
    kept = holders.orders.get(reference)
    assert kept.erased_at is None and kept.fulfilment is FulfilmentState.REJECTED
    assert holders.orders.delivery_of(kept).full_name != "[erased]"


# -- Support resolves a rejected order by correcting its address and sending it again ---------------

NEW_ADDRESS = "Ada Example\nFlat 2, 1 Test Street\n\nLondon\nSW1A 2AA\n"


def test_a_paid_order_rejected_then_sent_again_to_a_corrected_address_is_its_next_fulfilment(
    client, holders, stripe_emulator, token, settings, environment, monkeypatch
):
    from chalicelib.domain.references import fulfilment_id_of

    _, order = paid_order(client, holders, stripe_emulator)
    first = fulfilment_id_of(order.reference)
    assert call(client, token, "POST", f"/fulfilment-orders/{first}/reject", {"reason": "no flat number"})[0] == 200
    import importlib

    monkeypatch.setattr(importlib.import_module("ops.cli.support"), "dependencies", lambda: holders)  # one clock
    args = ["support", "resolve", order.reference, "--new-address", "--operator", "alice", "--reason", "flat number"]
    done = CliRunner().invoke(cli, args, input=NEW_ADDRESS)
    second = fulfilment_id_of(order.reference, 2)
    assert done.exit_code == 0, done.output
    assert f"sent again to the corrected address as {second}" in done.output
    again = CliRunner().invoke(cli, args, input=NEW_ADDRESS)
    assert again.exit_code == 0 and "nothing more done" in again.output

    stored = holders.orders.get(order.reference)
    assert (stored.fulfilment_id, stored.fulfilment, stored.payment) == (
        second,
        FulfilmentState.RELEASED,
        PaymentState.PAID,
    )
    assert support_cases(holders) == []
    [listed] = call(client, token, "GET", "/fulfilment-orders")[1]["fulfilment_orders"]
    assert listed["fulfilment_id"] == second and listed["recipient"]["address_lines"] == ["Flat 2, 1 Test Street"]
    assert "no flat number" not in str(listed) and "reject" not in str(listed).lower()
    assert not any("Flat 2" in e.change for e in stored.history)  # the log names who and why, not where
    told = [m for m in sent(settings) if "again" in m["subject"]]
    assert len(told) == 1 and "no flat number" not in told[0]["body"] and "Flat 2" not in told[0]["body"]
    assert_nothing_about_the_certificate(told[0])
    # the old fulfilment stays rejected for the kit maker; the new one is dispatched like any other
    assert call(client, token, "POST", f"/fulfilment-orders/{first}/reject", {"reason": "no flat number"})[0] == 200
    assert call(client, token, "POST", f"/fulfilment-orders/{second}/dispatch", dispatch_now(holders))[0] == 200
    assert holders.orders.get(order.reference).fulfilment is FulfilmentState.DISPATCHED
    assert [r for r in stripe_emulator.api_requests() if r == ("POST", "/v1/refunds")] == []  # no charge, no refund


def test_a_corrected_address_that_fails_the_journeys_checks_changes_nothing(
    client, holders, token, environment, monkeypatch
):
    reference = free_order(holders)
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/reject", {"reason": "x"})[0] == 200
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = ["support", "resolve", reference, "--new-address", "--operator", "alice", "--reason", "flat number"]
    refused = CliRunner().invoke(cli, args, input="Ada Example\n1 Test Street\n\nLondon\nNOT A POSTCODE\n")
    assert refused.exit_code == 1 and "not resolved" in refused.output and "postcode" in refused.output.lower()
    both = CliRunner().invoke(cli, [*args[:3], "--cancel", *args[3:]])
    assert both.exit_code != 0 and "choose one way" in both.output
    stored = holders.orders.get(reference)
    assert (stored.fulfilment, stored.fulfilment_attempt) == (FulfilmentState.REJECTED, 1)


def dispatch_now(holders) -> dict:
    from chalicelib.domain.times import to_iso

    return {**DISPATCH, "dispatched_at": to_iso(holders.clock())}


def test_a_returned_parcel_sent_again_is_on_the_kit_makers_statement_as_returned_then_replacement(
    client, holders, token
):
    from chalicelib.domain.delivery import parse_delivery_details
    from chalicelib.domain.kit_statement import KitKind, statement
    from chalicelib.domain.reconciliation import Period
    from chalicelib.domain.references import fulfilment_id_of
    from chalicelib.services.support import resolve_new_address
    from tests.builders import delivery_form

    reference = free_order(holders)
    first, second = fulfilment_id_of(reference), fulfilment_id_of(reference, 2)
    assert call(client, token, "POST", f"/fulfilment-orders/{first}/dispatch", dispatch_now(holders))[0] == 200
    assert call(client, token, "POST", f"/fulfilment-orders/{first}/returned", {"reason": "moved away"})[0] == 200
    corrected = parse_delivery_details(delivery_form(address_line_1="9 Other Road"))
    resolve_new_address(reference, corrected, "alice", "holder moved", holders)
    holders.clock.set(holders.clock() + timedelta(days=1))
    assert call(client, token, "POST", f"/fulfilment-orders/{second}/dispatch", dispatch_now(holders))[0] == 200
    today = holders.clock().date()
    kits = list(holders.finance_orders.kits_created_in(Period(today - timedelta(days=1), today + timedelta(days=1))))
    result = statement(kits, Period(today - timedelta(days=1), today + timedelta(days=1)), 895)
    assert [(line.fulfilment_id, line.kind) for line in result.lines] == [
        (first, KitKind.RETURNED),
        (second, KitKind.REPLACEMENT),
    ]
    assert result.total_pence == 1790  # two kits made and posted, 2 x 895
