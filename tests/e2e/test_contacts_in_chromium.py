"""A holder registers an email with the Firearms Enquiry Team in a real browser (headless Debian
Chromium) on the `make run` stack: register, confirm from the emailed link (read from the stack's
mail folder), register a new address in its place, withdraw by an email's link and by the withdraw
page; a used and a broken link refused clearly. axe (WCAG 2.2 AA) and the 400% reflow on each page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import synthetic_holders
from tests.e2e.test_accessibility import check
from tests.e2e.test_in_chromium import wait_for_mail


def link_in(mail: str, path: str) -> str:
    [url] = re.findall(rf"https?://\S+{re.escape(path)}\?token=[A-Za-z0-9_-]+", mail)
    return url


def register(page: Page, stack, reference: str, postcode: str, email: str, name: str | None = None) -> None:
    page.goto(stack["app"] + "/")
    page.get_by_role("link", name="Register your email with the Firearms Enquiry Team").click()
    expect(page.get_by_role("heading", name="Register your email with the Firearms Enquiry Team")).to_be_visible()
    if name:
        check(page, name)
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode").fill(postcode)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("The Firearms Enquiry Team may email me about firearms licensing").check()
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text("If that address can be registered, we have sent it a link")).to_be_visible()


def confirm(page: Page, stack, email: str, name: str | None = None) -> str:
    mail = wait_for_mail(stack, f"To: {email}", "confirm your email address")
    url = link_in(mail, "/contact/confirm")
    page.goto(url)
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    if name:
        check(page, name)
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", name="Email address confirmed")).to_be_visible()
    return url


def test_a_holder_registers_confirms_replaces_and_withdraws_by_link(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[-1]
    register(page, stack, reference, postcode, "first.contact@example.com", name="contact-register")
    check(page, "contact-check-email")
    mail = wait_for_mail(stack, "To: first.contact@example.com", "confirm your email address")
    assert reference not in mail and postcode not in mail and "firearm" not in mail.lower()
    used = confirm(page, stack, "first.contact@example.com", name="contact-confirm")
    check(page, "contact-confirmed")
    page.goto(used)  # the same link again
    expect(page.get_by_role("heading", name="This link has already been used")).to_be_visible()
    check(page, "contact-link-used")
    page.goto(stack["app"] + "/contact/confirm?token=not-a-token-anyone-was-sent")
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()

    register(page, stack, reference, postcode, "second.contact@example.com")
    confirm(page, stack, "second.contact@example.com")
    told = wait_for_mail(stack, "To: first.contact@example.com", "has been replaced")
    assert "second.contact@example.com" not in told

    second = wait_for_mail(stack, "To: second.contact@example.com", "confirm your email address")
    page.goto(link_in(second, "/contact/withdraw/confirm"))
    expect(page.get_by_role("heading", name="Withdraw your email address")).to_be_visible()
    check(page, "contact-withdraw-link")
    page.get_by_role("button", name="Withdraw my email address").click()
    expect(page.get_by_role("heading", name="Email address withdrawn")).to_be_visible()
    check(page, "contact-withdrawn")


def test_a_holder_withdraws_from_the_withdraw_page_and_mistakes_are_explained(page: Page, stack):
    reference, postcode = synthetic_holders(free=False)[-2]
    page.goto(stack["app"] + "/contact/register")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Register").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Enter your certificate reference")
    expect(summary).to_contain_text("Select yes if the Firearms Enquiry Team may contact you by email")
    check(page, "contact-register-errors")
    register(page, stack, reference, postcode, "withdraw.me@example.com")
    confirm(page, stack, "withdraw.me@example.com")

    page.goto(stack["app"] + "/")
    page.get_by_role("link", name="withdraw an address you registered").click()
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address")
    check(page, "contact-withdraw-errors")
    page.get_by_label("Email address").fill("Withdraw.Me@example.com")
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_text("If that address is registered, we have sent it a link to withdraw it")).to_be_visible()
    check(page, "contact-withdraw-check-email")
    mail = wait_for_mail(stack, "To: Withdraw.Me@example.com", "stop using your email address")
    page.goto(link_in(mail, "/contact/withdraw/confirm"))
    page.get_by_role("button", name="Withdraw my email address").click()
    expect(page.get_by_role("heading", name="Email address withdrawn")).to_be_visible()
