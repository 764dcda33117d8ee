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
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"a11y-{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"


def test_every_page_and_error_state_has_no_wcag_22_aa_violations(page: Page, stack):
    app = stack["app"]
    for path, name in (
        ("/", "start"),
        ("/privacy", "privacy"),
        ("/accessibility", "accessibility-statement"),
        ("/cookies", "cookies"),
        ("/status", "status-question"),
        ("/order/confirmation", "session-ended"),
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


def test_a_bank_payment_processing_then_failing_is_explained_accessibly(page: Page, stack):
    """The confirmation page's other states, reached as a holder reaches them: a bank transfer
    that is still processing, then the bank's refusal (settled on the emulator's control API)."""
    import urllib.request

    reference, postcode = synthetic_holders(free=False)[1]
    page.goto(stack["app"] + "/order/certificate")
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Full name").fill("Alex Fictitious")
    page.get_by_label("Address line 1").fill("4 Sample Road")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postcode").fill("N1 9AL")
    page.get_by_role("button", name="Continue").click()
    check(page, "check-answers-paid")
    page.get_by_role("button", name="Continue to payment").click()
    session_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    page.get_by_role("button", name="Pay by bank transfer (confirms later)").click()
    expect(page.get_by_role("heading", name="Your payment is being processed")).to_be_visible()
    check(page, "confirmation-processing")
    settle = urllib.request.Request(
        f"{stack['stripe']}/_emulator/sessions/{session_id}/settle", data=b"outcome=failed", method="POST"
    )
    urllib.request.urlopen(settle, timeout=10).close()  # nosec B310 - our own loopback emulator
    page.reload()
    expect(page.get_by_role("heading", name="Your payment did not go through")).to_be_visible()
    check(page, "confirmation-payment-failed")


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
