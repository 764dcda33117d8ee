"""After the order, from the holder's status page: cancelling, having proved the certificate again
(the same check, counters and refusal as ordering). Real adapters: moto, the emulator, SES."""

from __future__ import annotations

import pytest

from chalicelib import services
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from tests.builders import load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_email import sent
from tests.journeys.test_manufacturer import call, free_order
from tests.journeys.test_payment_events import paid_order

DELIVERY_POSTCODE = "SW1A 2AA"  # delivery_form's, and the register's certificate postcode here


@pytest.fixture
def holders(deps):
    """Two holders with a free kit (FA/2000, FA/2001) and one who pays (FA/1001)."""
    rows = [register_row(f"FA/{2000 + i}", "SW1A 2AA", free_kit="yes") for i in range(2)]
    load_register(deps, *rows, register_row("FA/1001", "SW1A 2AA"))
    return deps


def status_page(client, reference: str) -> tuple[Browser, str]:
    """A holder's browser on their order's status page, and the page's text."""
    browser = Browser(client)
    page = browser.post("/status", {"reference": reference, "postcode": DELIVERY_POSTCODE})
    assert page.status_code == 200, page.body
    return browser, page.body.decode()


def cancel(browser: Browser, order_reference: str, certificate: str, postcode: str = "SW1A 2AA"):
    return browser.post(
        "/status/cancel", {"order_reference": order_reference, "reference": certificate, "postcode": postcode}
    )


def test_a_free_order_cancelled_from_its_status_page_gives_the_kit_back_and_tells_the_kit_maker(
    client, holders, token, settings
):
    reference = free_order(holders, 0, email="sam@example.com")
    browser, text = status_page(client, reference)
    assert "Cancel your order" in text
    page = cancel(browser, reference, "FA/2000")
    assert page.status_code == 200 and "Your order was cancelled" in page.body.decode()
    order = holders.orders.get(reference)
    assert (order.state, order.fulfilment, order.cancelled_by_holder) == (
        OrderState.CANCELLED,
        FulfilmentState.CANCELLED,
        True,
    )
    assert order.history[-1].actor == "holder" and order.history[-1].change.startswith("cancelled by the holder")
    status, listed = call(client, token, "GET", "/cancellations")
    assert [c["fulfilment_id"] for c in listed["cancellations"]] == [order.fulfilment_id]
    mails = [m for m in sent(settings) if "cancelled" in m["subject"]]
    assert len(mails) == 1 and "nothing to refund" in mails[0]["body"] and "certificate" not in mails[0]["body"]
    again = services.check_certificate("FA/2000", "SW1A 2AA", holders)  # the certificate may order again
    assert again.price.is_free


def test_cancelling_twice_changes_nothing_more(client, holders, settings):
    reference = free_order(holders, 0, email="sam@example.com")
    browser, _ = status_page(client, reference)
    cancel(browser, reference, "FA/2000")
    once = holders.orders.get(reference)
    second = services.cancel_order(reference, "FA/2000", "SW1A 2AA", holders, "198.51.100.7")
    assert second.version == once.version and second.history == once.history
    assert len([m for m in sent(settings) if "cancelled" in m["subject"]]) == 1


def test_a_paid_order_cancelled_is_refunded_in_full_through_stripe(client, holders, stripe_emulator, settings):
    _browser, order = paid_order(client, holders, stripe_emulator)
    browser, _ = status_page(client, order.reference)
    page = cancel(browser, order.reference, "FA/1001")
    assert page.status_code == 200, page.body
    stored = holders.orders.get(order.reference)
    assert (stored.state, stored.payment, stored.refunded_pence) == (OrderState.CANCELLED, PaymentState.REFUNDED, 895)
    assert any("cancelled by the holder before dispatch" in entry.change for entry in stored.history)


def test_a_wrong_certificate_is_refused_like_any_failed_check_and_changes_nothing(client, holders):
    mine = free_order(holders, 0)
    free_order(holders, 1)
    browser, _ = status_page(client, mine)
    someone_elses = cancel(browser, mine, "FA/2001")  # a real certificate, not this order's
    wrong_postcode = cancel(browser, mine, "FA/2000", "SW1A 1AA")
    no_such_order = cancel(browser, "TK-00000-00000", "FA/2000")
    bodies = [r.body.decode() for r in (someone_elses, wrong_postcode, no_such_order)]
    assert {r.status_code for r in (someone_elses, wrong_postcode, no_such_order)} == {400}
    assert all("We could not match that certificate reference and postcode" in body for body in bodies)
    assert (
        len(
            {
                body.replace(mine, "R")
                .replace("TK-00000-00000", "R")
                .replace("SW1A 1AA", "P")
                .replace("SW1A 2AA", "P")
                .replace("FA/2001", "C")
                .replace("FA/2000", "C")
                for body in bodies
            }
        )
        == 1
    )
    assert holders.orders.get(mine).state is OrderState.CONFIRMED


def test_after_dispatch_the_page_offers_no_cancellation_and_a_late_try_is_refused_clearly(client, holders, token):
    from tests.journeys.test_manufacturer import DISPATCH

    reference = free_order(holders, 0)
    fulfilment_id = holders.orders.get(reference).fulfilment_id
    assert call(client, token, "POST", f"/fulfilment-orders/{fulfilment_id}/dispatch", DISPATCH)[0] == 200
    browser, text = status_page(client, reference)
    assert "Cancel your order" not in text
    late = cancel(browser, reference, "FA/2000")
    assert late.status_code == 409 and "can no longer be cancelled" in late.body.decode()
    assert holders.orders.get(reference).fulfilment is FulfilmentState.DISPATCHED


# -- The holder changes the delivery address ------------------------------------------------------

NEW_ADDRESS = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "ls1 4ap"}


def change_address(browser: Browser, order_reference: str, certificate: str, postcode: str = "SW1A 2AA", **fields):
    form = browser.post("/status/address", {"order_reference": order_reference})
    assert form.status_code == 200 and "Change the delivery address" in form.body.decode()
    answers = {"order_reference": order_reference, "reference": certificate, "certificate_postcode": postcode}
    return browser.post("/status/address/change", {**answers, **NEW_ADDRESS, **fields})


def test_a_released_order_changed_from_its_status_page_reaches_the_kit_maker_on_both_channels(
    client, holders, token, settings
):
    from tests.journeys.test_order_journey import queued_messages

    reference = free_order(holders, 0, email="sam@example.com")
    browser, text = status_page(client, reference)
    assert "Change the delivery address" in text
    page = change_address(browser, reference, "FA/2000")
    assert page.status_code == 200, page.body
    order = holders.orders.get(reference)
    assert (order.amendments_issued, order.amendment_sent) == (1, 1)
    assert holders.orders.delivery_of(order).email == "sam@example.com"
    _, open_list = call(client, token, "GET", "/fulfilment-orders")
    [listed] = [o for o in open_list["fulfilment_orders"] if o["order_reference"] == reference]
    assert listed["recipient"]["postcode"] == "LS1 4AP" and listed["recipient"]["name"] == "Sam New"
    amendments = [m for m in queued_messages(settings) if m.get("kind") == "address_amendment"]
    assert [(m["fulfilment_id"], m["amendment"], m["recipient"]["town"]) for m in amendments] == [
        (order.fulfilment_id, 1, "Leeds")
    ]
    _, listed_amendments = call(client, token, "GET", "/amendments")
    [amendment] = listed_amendments["amendments"]
    assert (amendment["amendment"], amendment["recipient"]["address_lines"]) == (1, ["2 New Road"])
    acknowledge = f"/amendments/{order.fulfilment_id}/acknowledge"
    first, second = (call(client, token, "POST", acknowledge, {"amendment": 1}) for _ in range(2))
    assert first == second and first[0] == 200
    assert call(client, token, "GET", "/amendments")[1]["amendments"] == []
    assert call(client, token, "POST", acknowledge, {"amendment": 2})[0] == 409
    assert call(client, token, "POST", "/amendments/F-00000-00000/acknowledge", {"amendment": 1})[0] == 404
    mails = [m for m in sent(settings) if "was changed" in m["subject"]]
    assert len(mails) == 1 and "Leeds" not in mails[0]["body"] and "certificate" not in mails[0]["body"].lower()


def test_changing_the_address_twice_to_the_same_address_changes_nothing_more(client, holders, settings):
    reference = free_order(holders, 0, email="sam@example.com")
    browser, _ = status_page(client, reference)
    change_address(browser, reference, "FA/2000")
    once = holders.orders.get(reference)
    new = {**NEW_ADDRESS}
    second = services.change_delivery_address(reference, "FA/2000", "SW1A 2AA", new, holders, "198.51.100.7")
    assert second.version == once.version and second.amendments_issued == 1
    assert len([m for m in sent(settings) if "was changed" in m["subject"]]) == 1


def test_a_wrong_certificate_is_refused_as_the_cancellation_refuses_it(client, holders):
    mine = free_order(holders, 0)
    free_order(holders, 1)
    browser, _ = status_page(client, mine)
    changes = [
        change_address(browser, mine, "FA/2001"),
        change_address(browser, mine, "FA/2000", "SW1A 1AA"),
        change_address(browser, "TK-00000-00000", "FA/2000"),
    ]
    cancels = [cancel(browser, mine, "FA/2001"), cancel(browser, mine, "FA/2000", "SW1A 1AA")]
    assert {r.status_code for r in changes + cancels} == {400}
    refusal = "We could not match that certificate reference and postcode"
    assert all(refusal in r.body.decode() for r in changes + cancels)
    from chalicelib.web.errors import NOT_MATCHED

    assert all(r.body.decode().count(NOT_MATCHED.replace("'", "&#39;")) >= 1 for r in changes + cancels)
    masked = {
        r.body.decode()
        .replace(mine, "R")
        .replace("TK-00000-00000", "R")
        .replace("SW1A 1AA", "P")
        .replace("SW1A 2AA", "P")
        .replace("FA/2001", "C")
        .replace("FA/2000", "C")
        for r in changes
    }
    assert len(masked) == 1  # someone else's certificate, a wrong postcode, no such order: one answer
    assert holders.orders.get(mine).amendments_issued == 0


def test_after_acceptance_the_page_gives_the_contact_and_a_late_change_is_refused_clearly(client, holders, token):
    reference = free_order(holders, 0)
    fulfilment_id = holders.orders.get(reference).fulfilment_id
    assert call(client, token, "POST", f"/fulfilment-orders/{fulfilment_id}/accept")[0] == 200
    browser, text = status_page(client, reference)
    assert "can no longer be changed" in text and "Change the delivery address</button>" not in text
    late = change_address(browser, reference, "FA/2000")
    assert late.status_code == 409 and "can no longer be changed" in late.body.decode()
    assert holders.orders.get(reference).amendments_issued == 0


def test_a_certificate_locked_by_failed_checks_is_refused_on_every_change_form_even_with_the_right_answer(
    client, holders
):
    """The cancellation, the change of address and the report of a kit not arrived share the
    certificate check's counters: wrong guesses at ordering lock them too, and the locked answer is
    the same refusal as a wrong one."""
    from chalicelib.domain.throttle import REFERENCE_LIMITS

    mine = free_order(holders, 0)
    guesser = Browser(client)
    for _ in range(REFERENCE_LIMITS.per_window):
        guesser.post("/order/certificate", {"reference": "FA/2000", "postcode": "SW1A 1AA"})
    browser, _ = status_page(client, mine)
    locked = [
        change_address(browser, mine, "FA/2000"),
        cancel(browser, mine, "FA/2000"),
        browser.post(
            "/status/replacement",
            {"order_reference": mine, "reference": "FA/2000", "postcode": "SW1A 2AA", "confirm_address": "yes"},
        ),
    ]
    assert [r.status_code for r in locked] == [400, 400, 400]
    assert all("We could not match that certificate reference and postcode" in r.body.decode() for r in locked)
    order = holders.orders.get(mine)
    assert (order.fulfilment, order.amendments_issued, order.cancelled_by_holder) == (
        FulfilmentState.RELEASED,
        0,
        False,
    )
