"""Support's side of an order: a paid order the kit maker rejects is on the work list as such, and
the holder's emails can be sent again, read here from what SES sent."""

from __future__ import annotations

from chalicelib.services.support import resend, support_cases
from tests.journeys.test_email import assert_nothing_about_the_certificate, sent
from tests.journeys.test_manufacturer import DISPATCH, call, fid, free_order
from tests.journeys.test_payment_events import paid_order


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
