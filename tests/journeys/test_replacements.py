"""A kit that has not arrived: the holder reports it from the status page (proving the certificate
again, confirming the address), support approves a replacement (the order's next fulfilment, its
own id) or declines, the kit maker sees a fulfilment like any other. Real adapters: moto, SES."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from chalicelib.domain.kit_statement import KitKind, statement
from chalicelib.domain.orders import FulfilmentState
from chalicelib.domain.reconciliation import Period
from chalicelib.domain.references import fulfilment_id_of
from chalicelib.domain.times import to_iso
from chalicelib.services.manufacturer import relay_unsent
from chalicelib.services.support import approve, decline, support_cases
from ops.cli import main as cli
from tests.builders import NOW
from tests.journeys.test_after_the_order import status_page
from tests.journeys.test_email import assert_nothing_about_the_certificate, sent
from tests.journeys.test_manufacturer import DISPATCH, call, free_order


def posted(client, holders, token, number: int = 0) -> str:
    """A free order (FA/200n) whose kit the kit maker posted at NOW."""
    reference = free_order(holders, number, email="sam@example.com")
    assert call(client, token, "POST", f"/fulfilment-orders/{fulfilment_id_of(reference)}/dispatch", DISPATCH)[0] == 200
    return reference


def report(browser, reference: str, certificate: str = "FA/2000", confirm: str = "yes"):
    body = {"order_reference": reference, "reference": certificate, "postcode": "SW1A 2AA", "confirm_address": confirm}
    return browser.post("/status/replacement", body)


def reported(client, holders, token, number: int = 0) -> str:
    reference = posted(client, holders, token, number)
    holders.clock.set(NOW + timedelta(days=10))
    browser, _ = status_page(client, reference)
    assert report(browser, reference, f"FA/{2000 + number}").status_code == 200
    return reference


def test_a_kit_reported_at_day_9_is_refused_with_the_date_and_at_day_10_opens_a_request(
    client, holders, token, settings
):
    reference = posted(client, holders, token)
    holders.clock.set(NOW + timedelta(days=9))
    browser, text = status_page(client, reference)
    allowed = NOW + timedelta(days=10)
    assert f"you can report it from {allowed.day} {allowed:%B %Y}" in text and "this address is correct" not in text
    refused = report(browser, reference)
    assert refused.status_code == 400 and "too soon" in refused.body.decode()
    assert not holders.orders.get(reference).replacement_open
    holders.clock.set(allowed)
    browser, text = status_page(client, reference)
    assert "Report that your kit has not arrived" in text and "1 T*** S*****" in text
    assert "Test Street" not in text and "Ada Example" not in text  # masked: the page opens to what the parcel shows
    unconfirmed = report(browser, reference, confirm="")
    assert unconfirmed.status_code == 400 and "Confirm that the address is correct" in unconfirmed.body.decode()
    page = report(browser, reference)
    assert page.status_code == 200 and "You have told us that your kit has not arrived" in page.body.decode()
    order = holders.orders.get(reference)
    assert order.replacement_open and order.history[-1].actor == "holder"
    [case] = support_cases(holders)
    assert (case.reference, case.why, case.since) == (reference, "replacement requested: kit not arrived", allowed)
    [mail] = [m for m in sent(settings) if "not arrived" in m["subject"]]
    assert_nothing_about_the_certificate(mail)
    assert holders.orders.get(reference).personal_data_until(timedelta(days=30)) is None


def test_a_wrong_certificate_is_refused_as_ordering_refuses_it(client, holders, token):
    reference = posted(client, holders, token)
    holders.clock.set(NOW + timedelta(days=10))
    browser, _ = status_page(client, reference)
    refused = report(browser, reference, certificate="FA/2001")
    assert refused.status_code == 400 and "We could not match that certificate reference" in refused.body.decode()
    assert not holders.orders.get(reference).replacement_open


def test_an_approved_replacement_is_a_fulfilment_like_any_other_and_counts_once_as_a_replacement(
    client, holders, token, settings
):
    reference = reported(client, holders, token)
    for _ in range(2):  # the same approval twice: one replacement
        approve(reference, "ann", "not delivered", holders)
    order = holders.orders.get(reference)
    second = fulfilment_id_of(reference, 2)
    assert (order.fulfilment_id, order.replacements_approved, order.fulfilment) == (
        second,
        1,
        FulfilmentState.RELEASED,
    )
    assert order.history[-1].change == f"released to the manufacturer as {second}"
    assert any(e.actor == "operator:ann" and "not delivered" in e.change for e in order.history)
    [listed] = call(client, token, "GET", "/fulfilment-orders")[1]["fulfilment_orders"]
    assert listed["fulfilment_id"] == second and listed["order_reference"] == reference
    assert listed["recipient"]["address_lines"][0] == "1 Test Street"
    assert "replace" not in str(listed).lower() and "not delivered" not in str(listed)
    subjects = [m["subject"] for m in sent(settings)]
    assert sum("replacement" in s.lower() for s in subjects) == 1 and sum("confirm" in s.lower() for s in subjects) <= 1
    again = {**DISPATCH, "kit_code": "SW-999", "dispatched_at": to_iso(holders.clock())}
    assert call(client, token, "POST", f"/fulfilment-orders/{second}/dispatch", again)[0] == 200
    kits = holders.finance_orders.kits_created_in(Period(NOW.date(), NOW.date() + timedelta(days=1)))
    result = statement(kits, Period(NOW.date(), (NOW + timedelta(days=30)).date()), 895)
    assert result.counts[KitKind.REPLACEMENT] == 1 and result.counts[KitKind.FREE_REGISTER_FLAG] == 1
    assert {line.fulfilment_id: line.kind for line in result.lines} == {
        fulfilment_id_of(reference): KitKind.FREE_REGISTER_FLAG,
        second: KitKind.REPLACEMENT,
    }
    # finance's reconciliation: the order's row says it had two kits, the second at no charge,
    # and finds nothing wrong with a second kit that had no payment
    import io

    from chalicelib.services.finance import export_to
    from tests.journeys.test_finance import sections

    out = io.BytesIO()
    export_to(out, "csv", Period(NOW.date(), NOW.date() + timedelta(days=1)), holders)
    found = sections(out.getvalue().decode("utf-8"))
    [header, *body] = next(rows for rows in found.values() if rows and "fulfilments" in rows[0])
    rows = [dict(zip(header, r, strict=True)) for r in body if reference in r]
    [order_row] = rows
    assert order_row["fulfilments"] == (
        f"{fulfilment_id_of(reference)}: dispatched, replacement approved; {second}: dispatched, at no charge"
    )
    assert order_row["discrepancies"] == ""


def test_the_kit_makers_report_on_the_superseded_id_again_is_unchanged_and_a_different_one_409(client, holders, token):
    reference = reported(client, holders, token)
    approve(reference, "ann", "not delivered", holders)
    first = fulfilment_id_of(reference)
    status, _ = call(client, token, "POST", f"/fulfilment-orders/{first}/dispatch", DISPATCH)
    assert status == 200
    status, body = call(client, token, "POST", f"/fulfilment-orders/{first}/dispatch", {**DISPATCH, "kit_code": "X-1"})
    assert status == 409 and "superseded" in body["error"]
    status, _ = call(client, token, "POST", f"/fulfilment-orders/{fulfilment_id_of(reference, 3)}/accept")
    assert status == 404
    assert holders.orders.get(reference).fulfilment is FulfilmentState.RELEASED


def test_a_second_replacement_is_refused_without_admin_and_made_with_it(
    client, holders, token, environment, monkeypatch
):
    reference = reported(client, holders, token)
    approve(reference, "ann", "not delivered", holders)
    posted_again = {**DISPATCH, "kit_code": "SW-2", "dispatched_at": to_iso(holders.clock())}
    assert (
        call(client, token, "POST", f"/fulfilment-orders/{fulfilment_id_of(reference, 2)}/dispatch", posted_again)[0]
        == 200
    )
    holders.clock.set(holders.clock() + timedelta(days=10))
    browser, _ = status_page(client, reference)
    assert report(browser, reference).status_code == 200
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    command = ["support", "approve-replacement", reference, "--operator", "bo", "--reason", "lost again"]
    refused = CliRunner().invoke(cli, command)
    assert refused.exit_code != 0 and "only an admin" in refused.output
    allowed = CliRunner().invoke(cli, [*command, "--admin"])
    assert allowed.exit_code == 0, allowed.output
    order = holders.orders.get(reference)
    assert order.fulfilment_attempt == 3 and order.replacements_approved == 2
    assert any(e.actor == "operator:bo" and "admin override" in e.change for e in order.history)
    shown = CliRunner().invoke(cli, ["support", "show", reference])
    assert fulfilment_id_of(reference, 2) in shown.output and "earlier fulfilment" in shown.output


def test_a_declined_report_emails_supports_reason_and_closes_the_request(client, holders, token, settings):
    reference = reported(client, holders, token)
    for _ in range(2):
        decline(reference, "ann", "the carrier has it signed for on your doorstep", holders)
    order = holders.orders.get(reference)
    assert not order.replacement_open and order.fulfilment_attempt == 1 and support_cases(holders) == []
    assert order.personal_data_until(timedelta(days=30)) == NOW + timedelta(days=30)
    [mail] = [m for m in sent(settings) if "not sending a replacement" in m["body"]]
    assert "signed for on your doorstep" in mail["body"]
    assert_nothing_about_the_certificate(mail)
    with pytest.raises(Exception, match="no open report"):
        approve(reference, "ann", "changed my mind", holders)
    assert relay_unsent(holders) == 0
    browser, text = status_page(client, reference)
    assert "Report that your kit has not arrived" not in text  # decided: not offered again
    again = report(browser, reference)
    assert again.status_code == 409 and "cannot be reported as not arrived" in again.body.decode()
