"""The staff console in Debian's Chromium on the `make run` stack, as staff use it: signed in with
the demo users the stack printed, every control found by its label or role, and axe-core run on
each page and error state on the way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.e2e.test_accessibility import check


def sign_in(page: Page, stack, group: str) -> None:
    username, password = stack["staff"][group]
    page.goto(stack["console"] + "/")
    expect(page.get_by_role("heading", name="Sign in to the staff console")).to_be_visible()
    page.get_by_label("Email address").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Staff console")).to_be_visible()


def summary_value(page: Page, label: str) -> str:
    return page.get_by_role("row", name=re.compile(rf"^{re.escape(label)} ")).get_by_role("cell").inner_text()


def test_support_refunds_the_demo_order_and_finance_sees_the_refund(page: Page, stack):
    """The issue's "done means": the printed support user finds the printed demo order, refunds
    it, and the finance user sees the refund in the reconciliation; nothing outside the browser."""
    assert set(stack["staff"]) == {"support", "finance", "register-admin", "admin"}
    order = stack["demo_order"]

    page.goto(stack["console"] + "/")
    check(page, "console-sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address")
    check(page, "console-sign-in-errors")

    sign_in(page, stack, "support")
    check(page, "console-home-support")
    page.get_by_role("main").get_by_role("link", name="Find an order").click()
    page.get_by_label("Order reference").fill("TK-NOT-THERE")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "console-find-errors")
    page.get_by_label("Order reference").fill(order.lower())
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name=f"Order {order}")).to_be_visible()
    expect(page.get_by_text("Alex Fictitious")).to_have_count(0)  # the name only on an audited request
    check(page, "console-order")

    page.get_by_label("Why do you need to see the holder's name and address?").fill("checking the address")
    page.get_by_role("button", name="Show name and address").click()
    expect(page.get_by_text("Alex Fictitious")).to_be_visible()

    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("alert")).to_contain_text("reason")
    check(page, "console-refund-errors")
    page.get_by_label("Reason for the refund").fill("holder asked to cancel")
    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_text("The refund was made.")).to_be_visible()
    expect(page.get_by_text("Refunded £8.95", exact=True)).to_be_visible()
    check(page, "console-order-refunded")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the staff console")).to_be_visible()

    sign_in(page, stack, "finance")
    page.get_by_role("main").get_by_role("link", name="Reconciliation").click()
    today = datetime.now(UTC).date()  # the stack placed the demo order on the same clock
    page.get_by_label("From (inclusive)").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("To (exclusive)").fill((today + timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Reconcile").click()
    expect(page.get_by_role("row", name=re.compile("^refunds_pence "))).to_be_visible()
    assert int(summary_value(page, "refunds_pence")) >= 895
    assert int(summary_value(page, "payment refunded")) >= 1  # the demo order, in its refunded state
    check(page, "console-reconciliation")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert order in download.value.path().read_text()


def test_each_group_sees_only_its_own_pages_and_is_refused_the_others(page: Page, stack):
    sign_in(page, stack, "finance")
    expect(page.get_by_role("main").get_by_role("link", name="Find an order")).to_have_count(0)
    page.goto(stack["console"] + "/support/work-list")
    expect(page.get_by_role("heading", name=re.compile("not allowed|cannot", re.IGNORECASE))).to_be_visible()
    check(page, "console-refused")
    page.get_by_role("button", name="Sign out").click()
    page.goto(stack["console"] + "/finance/reconciliation")
    expect(page.get_by_role("heading", name="Sign in to the staff console")).to_be_visible()
