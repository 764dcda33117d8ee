"""A holder orders in a real browser (headless Debian Chromium) on the `make run` stack, finding
every control by its visible label or role, as a person would."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTEFACTS, manufacturer_token, queued, synthetic_holders

REFERENCE = re.compile(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}")


def snap(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def answer_questions(page: Page, app: str, reference: str, postcode: str) -> None:
    page.goto(app + "/")
    snap(page, "01-start")
    page.get_by_role("button", name="Start now").click()
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    snap(page, "02-certificate")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Where should we send your kit?")).to_be_visible()
    page.get_by_label("Full name").fill("Sam Fictitious")
    page.get_by_label("Address line 1").fill("2 Sample Road")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("n1 9al")
    page.get_by_label("Email address (optional)").fill("sam@example.com")
    snap(page, "03-delivery")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answers before ordering")).to_be_visible()


def test_a_holder_pays_after_a_declined_card(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[0]
    answer_questions(page, stack["app"], reference, postcode)
    expect(page.get_by_text("£8.95").first).to_be_visible()
    snap(page, "04-check-answers-paid")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_text("Your card was declined")).to_be_visible()
    snap(page, "05-stripe-declined")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    snap(page, "06-confirmation-paid")
    reference = REFERENCE.search(page.content()).group(0)
    assert [m["order_reference"] for m in queued(stack)] == [reference]


def test_a_free_kit_holder_confirms_without_paying(page: Page, stack):
    reference, postcode = synthetic_holders(free=True)[0]
    answer_questions(page, stack["app"], reference.lower().replace("/", " "), postcode.lower().replace(" ", ""))
    expect(page.get_by_role("heading", name="Your kit is free")).to_be_visible()
    page.get_by_role("button", name="Confirm order").click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    snap(page, "07-confirmation-free")
    assert [m["recipient"]["name"] for m in queued(stack)] == ["Sam Fictitious"]
    order = REFERENCE.search(page.content()).group(0)
    mail = wait_for_mail(stack, order)
    assert "To: sam@example.com" in mail and "Price: free" in mail and reference not in mail
    assert any(f"to sam@example.com: 'Your property-marking kit order {order}'" in line for line in stack["output"])


def wait_for_mail(stack, *texts: str, timeout: float = 10) -> str:
    """The first email the local stack wrote to its mail folder (it writes each one the app sends,
    and says so) that mentions every one of `texts`: tests sharing the stack send alike emails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(stack["mail"].glob("*.txt")):
            if all(text in (content := path.read_text()) for text in texts):
                return content
        time.sleep(0.2)
    raise AssertionError(f"no mail mentioning {texts} in {stack['mail']}")


def test_errors_are_summarised_and_linked_to_their_fields(page: Page, stack):
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Enter your certificate reference")
    summary.get_by_role("link", name="Enter a full UK postcode").click()
    expect(page.get_by_label("Postcode")).to_be_focused()
    snap(page, "08-certificate-errors")
    page.get_by_label("Certificate reference").fill("SYN/100005")
    page.get_by_label("Postcode").fill("SW9 8QH")
    page.get_by_role("button", name="Continue").click()
    expect(summary).to_contain_text("We could not match that certificate reference and postcode")


def emoji(length: int, seed: int) -> str:
    """`length` emoji (4 bytes each in UTF-8), varied so the text is not a run of one character."""
    return "".join(chr(0x1F600 + (seed * 31 + n * 7) % 80) for n in range(length))


def test_every_field_at_its_longest_in_emoji_reaches_the_check_answers_page(page: Page, stack):
    """The journey cookie's worst case (tests/unit/test_journey_cookie.py) in a real browser: a
    cookie Chromium dropped sent the holder back to the certificate page, in a loop."""
    from chalicelib.domain.delivery import LIMITS

    reference, postcode = synthetic_holders(free=True)[4]
    answers = {
        "Full name": emoji(LIMITS["full_name"], 1),
        "Address line 1": emoji(LIMITS["address_line_1"], 2),
        "Address line 2 (optional)": emoji(LIMITS["address_line_2"], 3),
        "Town or city": emoji(LIMITS["town"], 4),
    }
    email = f"{emoji(126, 5)}@{emoji(125, 6)}.{emoji(1, 7)}"
    assert len(email) == LIMITS["email"]
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Where should we send your kit?")).to_be_visible()
    for label, value in answers.items():
        page.get_by_label(label).fill(value)
    page.get_by_label("Postcode").fill("SW1A 2AA")
    page.get_by_label("Email address (optional)").fill(email)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answers before ordering")).to_be_visible()
    snap(page, "09-check-answers-longest-emoji")
    shown = page.content()
    assert all(value in shown for value in answers.values()) and email in shown
    [cookie] = [c for c in page.context.cookies() if c["name"] == "tk_journey"]
    assert len(cookie["name"]) + len(cookie["value"]) <= 4096 - 300
    page.reload()  # the browser sends the cookie back: the answers are still there
    expect(page.get_by_role("heading", name="Check your answers before ordering")).to_be_visible()


def test_a_journey_whose_cookie_is_lost_says_so_on_the_page_it_lands_on(page: Page, stack):
    reference, postcode = synthetic_holders(free=True)[5]
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Where should we send your kit?")).to_be_visible()
    page.context.clear_cookies()
    page.get_by_label("Full name").fill("Sam Fictitious")
    page.get_by_label("Address line 1").fill("2 Sample Road")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("N1 9AL")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Your certificate")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("We could not find your earlier answers")


def test_a_holder_cancels_from_the_status_page_after_proving_the_certificate_again(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[20]
    answer_questions(page, stack["app"], reference, postcode)
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    order = REFERENCE.search(page.content()).group(0)
    assert [m["order_reference"] for m in queued(stack)] == [order]  # released, as the kit maker sees it
    page.goto(stack["app"] + "/status")
    page.get_by_label("Order reference").fill(order)
    page.get_by_label("Delivery postcode").fill("N1 9AL")
    page.get_by_role("button", name="Check status").click()
    expect(page.get_by_role("heading", name="Cancel your order")).to_be_visible()
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill("E1 1AA" if postcode != "E1 1AA" else "E1 2AA")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("alert")).to_contain_text("We could not match that certificate reference and postcode")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("heading", name="Your order was cancelled")).to_be_visible()
    snap(page, "08-cancelled-by-the-holder")
    mail = wait_for_mail(stack, f"{order} is cancelled")
    assert "To: sam@example.com" in mail and "We are refunding £8.95" in mail and reference not in mail


# -- Pages fixed in issue 15's first session, in one browser session ---------------------------------


def kit_maker_dispatches(stack, order: str, dispatched_at: str) -> None:
    """The kit maker's client posts a dispatch, with a key made in the stack's own key table."""
    import json
    import urllib.request

    token = manufacturer_token(stack)
    fulfilment = "F-" + order.removeprefix("TK-")
    body = {
        "kit_code": "SW-123456",
        "carrier": "Royal Mail",
        "tracking_reference": "RM123456789GB",
        "dispatched_at": dispatched_at,
    }
    request = urllib.request.Request(
        f"{stack['app']}/manufacturer/fulfilment-orders/{fulfilment}/dispatch",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 - the local stack
        assert response.status == 200


def status_of(page: Page, stack, order: str) -> None:
    page.goto(stack["app"] + "/status")
    page.get_by_label("Order reference").fill(order)
    page.get_by_label("Delivery postcode").fill("N1 9AL")
    page.get_by_role("button", name="Check status").click()


def test_the_pages_fixed_after_the_order_say_what_they_should(chromium, page: Page, stack):
    """The home page's title names the service once; a refused certificate check gives the campaign's
    contact; the confirmation masks the email's address;
    a second order is sent to the status page and the campaign's contact; the status page writes a
    dispatch date as GOV.UK does; an order whose time to pay ran out can be ordered again."""
    from datetime import datetime, timezone

    page.goto(stack["app"] + "/")
    assert page.title().count("Order a property-marking kit") == 1, page.title()

    reference, postcode = synthetic_holders(free=False)[6]  # the stack's six free-kit holders are taken
    page.goto(stack["app"] + "/order/certificate")  # a refused check (as a lockout is) gives the contact
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill("E1 1AA" if postcode != "E1 1AA" else "E1 2AA")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("link", name="enquiries@tracekit.invalid")).to_be_visible()
    answer_questions(page, stack["app"], reference, postcode)
    second = chromium.new_context()  # the same holder, in another browser, at the same moment
    try:
        other = second.new_page()
        answer_questions(other, stack["app"], reference, postcode)
        page.get_by_role("button", name="Continue to payment").click()
        page.get_by_role("button", name="Pay", exact=True).click()
        expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
        expect(page.get_by_text("We are sending a confirmation email to s***@example.com")).to_be_visible()
        other.get_by_role("button", name="Continue to payment").click()
        heading = "A kit has already been ordered for this certificate"
        expect(other.get_by_role("heading", name=heading)).to_be_visible()
        expect(other.get_by_role("link", name="check the status of your order")).to_have_attribute("href", "/status")
        expect(other.get_by_role("link", name="enquiries@tracekit.invalid")).to_be_visible()
    finally:
        second.close()
    order = REFERENCE.search(page.content()).group(0)
    assert order in [m["order_reference"] for m in queued(stack)]

    posted = datetime.now(timezone.utc).replace(microsecond=0)
    kit_maker_dispatches(stack, order, posted.isoformat().replace("+00:00", "Z"))
    status_of(page, stack, order)
    expect(page.get_by_role("heading", name="Your kit has been posted")).to_be_visible()
    expect(page.get_by_text(f"Posted on {posted.day} {posted:%B %Y} by Royal Mail.")).to_be_visible()

    paid, paid_postcode = synthetic_holders(free=False)[7]
    answer_questions(page, stack["app"], paid, paid_postcode)
    page.get_by_role("button", name="Continue to payment").click()
    session_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    from tests.e2e.test_accessibility import emulator

    emulator(stack, f"/_emulator/sessions/{session_id}/expire")
    page.goto(stack["app"] + "/order/confirmation")
    unpaid = REFERENCE.search(page.content()).group(0)
    status_of(page, stack, unpaid)
    expect(page.get_by_role("heading", name="Your order was not completed")).to_be_visible()
    expect(page.get_by_text("you can order again")).to_be_visible()
    snap(page, "09-expired-status")


def _as_if_posted_days_ago(stack, order: str, days: int) -> None:
    """The kit maker posts the kit (through its API, with a key made as the CLI makes one); then,
    as the stack's clock cannot be moved, its dispatch time is set `days` back in the table."""
    import boto3
    import requests

    from chalicelib.domain.references import fulfilment_id_of
    from chalicelib.domain.times import to_iso
    from chalicelib.timeutil import utc_now
    from devstack.aws import load_resources, physical_name
    from devstack.stack import REGION

    credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    resources = load_resources()
    token = manufacturer_token(stack, "chromium")
    report = {
        "kit_code": "SW-1",
        "carrier": "Royal Mail",
        "tracking_reference": "RM1",
        "dispatched_at": to_iso(utc_now()),
    }
    posted = requests.post(
        f"{stack['app']}/manufacturer/fulfilment-orders/{fulfilment_id_of(order)}/dispatch",
        json=report,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    table = boto3.resource("dynamodb", endpoint_url=stack["moto"], region_name=REGION, **credentials).Table(
        physical_name("local", "OrdersTable", resources["OrdersTable"])
    )
    earlier = to_iso(utc_now() - timedelta(days=days))
    table.update_item(
        Key={"order_ref": order},
        UpdateExpression="SET dispatched_at = :d, released_at = :d",
        ExpressionAttributeValues={":d": earlier},
    )


def test_a_holder_reports_a_kit_that_has_not_arrived_from_the_status_page(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[21]
    answer_questions(page, stack["app"], reference, postcode)
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    order = REFERENCE.search(page.content()).group(0)
    assert [m["order_reference"] for m in queued(stack)] == [order]  # released, and drained as the kit maker
    _as_if_posted_days_ago(stack, order, days=11)
    page.goto(stack["app"] + "/status")
    page.get_by_label("Order reference").fill(order)
    page.get_by_label("Delivery postcode").fill("N1 9AL")
    page.get_by_role("button", name="Check status").click()
    expect(page.get_by_role("heading", name="Report that your kit has not arrived")).to_be_visible()
    expect(page.locator("#replacement-address")).to_contain_text("2 S***** R***")  # masked before the proof
    expect(page.locator("#replacement-address")).not_to_contain_text("Sample")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_role("button", name="Report kit not arrived").click()
    expect(page.get_by_role("alert")).to_contain_text("Confirm that the address is correct")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_label("This address is correct").check()
    page.get_by_role("button", name="Report kit not arrived").click()
    expect(page.get_by_text("You have told us that your kit has not arrived")).to_be_visible()
    snap(page, "09-kit-reported-not-arrived")
    mail = wait_for_mail(stack, "has not arrived", order)
    assert "To: sam@example.com" in mail and order in mail and reference not in mail


def test_a_holder_changes_the_delivery_address_and_the_kit_maker_gets_the_amendment(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[22]
    answer_questions(page, stack["app"], reference, postcode)
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    order = REFERENCE.search(page.content()).group(0)
    assert [m["order_reference"] for m in queued(stack)] == [order]  # released, as the kit maker sees it
    page.goto(stack["app"] + "/status")
    page.get_by_label("Order reference").fill(order)
    page.get_by_label("Delivery postcode").fill("N1 9AL")
    page.get_by_role("button", name="Check status").click()
    page.get_by_role("button", name="Change the delivery address").click()
    expect(page.get_by_role("heading", name="Change the delivery address")).to_be_visible()
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_label("Full name").fill("Sam Fictitious")
    page.get_by_label("Address line 1").fill("9 Other Street")
    page.get_by_label("Town or city").fill("Leeds")
    page.get_by_label("Postcode", exact=True).fill("not a postcode")
    page.get_by_role("button", name="Change the delivery address").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the delivery page's own postcode check
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_label("Postcode", exact=True).fill("ls1 4ap")
    page.get_by_role("button", name="Change the delivery address").click()
    expect(page.get_by_role("heading", name="Your order is confirmed")).to_be_visible()
    snap(page, "10-address-changed")
    [amendment] = queued(stack)
    assert (amendment["kind"], amendment["amendment"], amendment["recipient"]["postcode"]) == (
        "address_amendment",
        1,
        "LS1 4AP",
    )
    mail = wait_for_mail(stack, f"{order} was changed")
    assert "To: sam@example.com" in mail and "Leeds" not in mail and reference not in mail
