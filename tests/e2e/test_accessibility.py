"""Every page and every error state, in Debian's Chromium on the local stack, checked by axe-core
(from npm, injected by the test) against WCAG 2.2 AA, with a screenshot of each saved; and the
patterns axe cannot judge: the error summary takes focus, the service works with JavaScript off
and reflows at 400% zoom."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTEFACTS, queued, synthetic_holders

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page: Page) -> list[dict]:
    """axe-core's violations for the page as it stands. Evaluated through the DevTools protocol,
    which the page's CSP (no script at all) does not govern."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make does)")
    page.evaluate(AXE.read_text())
    result = page.evaluate("options => axe.run(document, options)", {"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


def check(page: Page, name: str) -> None:
    """axe finds nothing at WCAG 2.2 AA, and the page reflows at 400% zoom: a 1280 px window
    zoomed 400% is a 320 CSS px viewport (WCAG 1.4.10), where nothing may scroll sideways."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"a11y-{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 256})
    try:
        wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"{name} scrolls {wide} px sideways at 320 px (400% zoom)"
        page.screenshot(path=str(ARTEFACTS / f"a11y-{name}-400-percent.png"), full_page=True)
    finally:
        page.set_viewport_size(size)


def emulator(stack, path: str, body: str = "") -> dict:
    """A control of the local Stripe emulator, as its dashboard's forms use them."""
    import urllib.request

    request = urllib.request.Request(stack["stripe"] + path, data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 - our own loopback emulator
        return json.loads(response.read())


def emulator_events(stack) -> list[dict]:
    import urllib.request

    with urllib.request.urlopen(stack["stripe"] + "/_emulator/events", timeout=10) as response:  # nosec B310
        return json.loads(response.read())["data"]


def to_check_answers(page: Page, stack, reference: str, postcode: str, name: str = "Alex Fictitious") -> None:
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Address line 1").fill("4 Sample Road")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("N1 9AL")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answers before ordering")).to_be_visible()


def test_every_page_and_error_state_has_no_wcag_22_aa_violations(page: Page, stack):
    app = stack["app"]
    for path, name in (
        ("/", "start"),
        ("/privacy", "privacy"),
        ("/accessibility", "accessibility-statement"),
        ("/cookies", "cookies"),
        ("/status", "status-question"),
        ("/order/confirmation", "session-ended"),
        ("/no-such-page", "not-found"),
    ):
        page.goto(app + path)
        check(page, name)

    page.goto(app + "/status")
    page.get_by_role("button", name="Check status").click()
    check(page, "status-errors")

    page.goto(app + "/order/certificate")
    check(page, "certificate-question")
    page.get_by_role("button", name="Continue").click()
    check(page, "certificate-errors")
    reference, postcode = synthetic_holders(free=True)[1]
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_role("button", name="Continue").click()
    check(page, "delivery-question")
    page.get_by_role("button", name="Continue").click()
    check(page, "delivery-errors")
    page.get_by_label("Full name").fill("Sam Fictitious")
    page.get_by_label("Address line 1").fill("2 Sample Road")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("N1 9AL")
    page.get_by_label("The Firearms Enquiry Team may email me about firearms licensing in future").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address if you want the Firearms Enquiry Team")
    check(page, "delivery-consent-without-email")
    page.get_by_label("Email address (optional)").fill("sam@example.com")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("Yes, by email")).to_be_visible()
    check(page, "check-answers")
    page.get_by_role("button", name="Confirm order").click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    check(page, "confirmation")
    assert [m["recipient"]["name"] for m in queued(stack)] == ["Sam Fictitious"]  # and the queue is left empty
    order = re.search(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}", page.content()).group(0)

    page.get_by_role("link", name="check the status of your order").click()
    page.get_by_label("Order reference").fill(order.lower())
    page.get_by_label("Delivery postcode").fill("SW1A 1AA")  # not this order's
    page.get_by_role("button", name="Check status").click()
    expect(page.get_by_role("alert")).to_contain_text("We could not find an order with that reference")
    check(page, "status-not-found")
    page.get_by_label("Delivery postcode").fill("n19al")
    page.get_by_role("button", name="Check status").click()
    expect(page.get_by_text(order)).to_be_visible()
    check(page, "status-found")
    page.get_by_role("button", name="Change the delivery address").click()
    check(page, "change-address-question")
    page.get_by_role("button", name="Change the delivery address").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "change-address-errors")


def to_payment_page(page: Page, stack, holder: int, check_name: str | None = None) -> str:
    """A paid holder's order up to the emulator's hosted checkout page; returns the session id."""
    reference, postcode = synthetic_holders(free=False)[holder]
    to_check_answers(page, stack, reference, postcode)
    if check_name:
        check(page, check_name)
    page.get_by_role("button", name="Continue to payment").click()
    return page.url.rsplit("/", 1)[-1].split("?")[0]


def test_a_bank_payment_processing_then_failing_is_explained_accessibly(page: Page, stack):
    """The confirmation page's other states, reached as a holder reaches them: a bank transfer
    that is still processing, then the bank's refusal (settled on the emulator's control API)."""
    session_id = to_payment_page(page, stack, 1, check_name="check-answers-paid")
    page.get_by_role("button", name="Pay by bank transfer (confirms later)").click()
    expect(page.get_by_role("heading", name="Your payment is being processed")).to_be_visible()
    check(page, "confirmation-processing")
    emulator(stack, f"/_emulator/sessions/{session_id}/settle", "outcome=failed")
    page.reload()
    expect(page.get_by_role("heading", name="Your payment did not go through")).to_be_visible()
    check(page, "confirmation-payment-failed")


def test_an_unpaid_checkout_is_explained_while_open_and_once_it_expires(page: Page, stack):
    session_id = to_payment_page(page, stack, 2)
    page.goto(stack["app"] + "/order/confirmation")  # left the payment page without paying
    expect(page.get_by_role("heading", name="We are confirming your payment")).to_be_visible()
    check(page, "confirmation-confirming")
    emulator(stack, f"/_emulator/sessions/{session_id}/expire")
    page.reload()
    expect(page.get_by_role("heading", name="The time to pay ran out")).to_be_visible()
    check(page, "confirmation-expired")


def test_a_refund_before_dispatch_is_explained(page: Page, stack):
    session_id = to_payment_page(page, stack, 3)
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
    completed = [e for e in emulator_events(stack) if e["data"]["object"].get("id") == session_id]
    payment_intent = next(e["data"]["object"]["payment_intent"] for e in completed if e["type"].endswith("completed"))
    emulator(stack, f"/_emulator/payment_intents/{payment_intent}/refund")
    page.reload()
    expect(page.get_by_role("heading", name="Your order was cancelled and refunded")).to_be_visible()
    check(page, "confirmation-refunded")
    queued(stack)  # the release and its cancellation: the manufacturer's business, not this test's


def test_payments_being_down_is_explained_and_the_order_does_not_go_ahead(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[4]
    to_check_answers(page, stack, reference, postcode)
    emulator(stack, "/_emulator/failures", "count=30&status=503")  # more than the SDK's retries
    try:
        page.get_by_role("button", name="Continue to payment").click()
        expect(page.get_by_role("heading", name="Sorry, payments are not working right now")).to_be_visible()
    finally:
        emulator(stack, "/_emulator/failures", "count=0")
    check(page, "payment-unavailable")
    page.goto(stack["app"] + "/order/confirmation")
    expect(page.get_by_role("heading", name="Your order did not go ahead")).to_be_visible()
    check(page, "confirmation-cancelled")


def test_stripe_down_on_the_return_from_checkout_says_the_payment_is_being_checked(page: Page, stack):
    session_id = to_payment_page(page, stack, 5)
    emulator(stack, "/_emulator/failures", "count=30&status=503")  # more than the SDK's retries
    try:
        page.goto(stack["app"] + f"/order/payment-complete?session_id={session_id}")
        expect(page.get_by_role("heading", name="We are checking your payment")).to_be_visible()
    finally:
        emulator(stack, "/_emulator/failures", "count=0")
    expect(page.get_by_text("Nothing will be taken twice", exact=False)).to_be_visible()
    expect(page.get_by_text("not been charged", exact=False)).to_have_count(0)
    check(page, "confirmation-checking")


def test_a_second_order_for_one_certificate_and_an_expired_form_are_explained(chromium, page: Page, stack):
    reference, postcode = synthetic_holders(free=True)[3]
    other = chromium.new_context()
    try:
        second = other.new_page()
        to_check_answers(page, stack, reference, postcode)
        to_check_answers(second, stack, reference, postcode, name="Sam Fictitious")
        page.get_by_role("button", name="Confirm order").click()
        expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
        second.get_by_role("button", name="Confirm order").click()
        expect(
            second.get_by_role("heading", name="A kit has already been ordered for this certificate")
        ).to_be_visible()
        check(second, "already-ordered")
    finally:
        other.close()
    assert [m["recipient"]["name"] for m in queued(stack)] == ["Alex Fictitious"]

    page.goto(stack["app"] + "/order/certificate")
    page.context.clear_cookies()  # the session cookie and its form token are gone
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="This form has expired")).to_be_visible()
    check(page, "problem-form-expired")


def test_the_error_summary_takes_focus_without_script(page: Page, stack):
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")


def test_a_free_order_works_with_javascript_off(chromium, stack):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        reference, postcode = synthetic_holders(free=True)[2]
        page.goto(stack["app"] + "/")
        page.get_by_role("button", name="Start now").click()
        page.get_by_label("Certificate reference").fill(reference)
        page.get_by_label("Postcode").fill(postcode)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Full name").fill("Jo Fictitious")
        page.get_by_label("Address line 1").fill("3 Sample Road")
        page.get_by_label("Town or city").fill("London")
        page.get_by_label("Postcode").fill("N1 9AL")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Confirm order").click()
        expect(page.get_by_role("heading", name="Order complete")).to_be_visible()
        assert [m["recipient"]["name"] for m in queued(stack)] == ["Jo Fictitious"]
    finally:
        context.close()


def test_pages_reflow_at_400_percent_zoom(chromium, stack):
    """400% zoom of a 1280 px window is a 320 CSS px viewport (WCAG 1.4.10): nothing may need
    scrolling sideways."""
    context = chromium.new_context(viewport={"width": 320, "height": 256})
    page = context.new_page()
    try:
        for path in ("/", "/order/certificate", "/status", "/privacy", "/accessibility", "/cookies"):
            page.goto(stack["app"] + path)
            wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert wide <= 0, f"{path} scrolls {wide} px sideways at 320 px"
        page.screenshot(path=str(ARTEFACTS / "a11y-cookies-at-400-percent.png"), full_page=True)
    finally:
        context.close()
