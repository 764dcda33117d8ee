"""The staff console in Debian's Chromium on the `make run` stack, as staff use it: signed in with
the demo users the stack printed, every control found by its label or role, and axe-core run on
each page and error state on the way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.e2e.conftest import manufacturer_token, queued, synthetic_holders
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


def test_support_changes_the_demo_orders_address_and_the_kit_maker_is_sent_an_amendment(page: Page, stack):
    from tests.e2e.conftest import queued

    # First in the file: the next test refunds the demo order in full, which ends it.
    order = stack["demo_order"]
    sign_in(page, stack, "support")
    page.goto(f"{stack['console']}/support/orders/{order}")
    page.get_by_role("link", name="Change the delivery name and address").click()
    check(page, "console-change-address")
    page.get_by_label("Postcode").fill("NOT A POSTCODE")
    page.get_by_role("button", name="Change the name and address").click()
    expect(page.get_by_role("alert")).to_contain_text("reason")
    check(page, "console-change-address-errors")
    page.get_by_label("Full name").fill("Alex Fictitious")  # the next test looks for the name
    page.get_by_label("Address line 1").fill("2 Example Road")
    page.get_by_label("Town or city").fill("Leeds")
    page.get_by_label("Postcode").fill("LS2 9JT")
    page.get_by_label("Reason").fill("holder phoned: moved house")
    page.get_by_role("button", name="Change the name and address").click()
    expect(page.get_by_text("Done: the delivery name and address changed.")).to_be_visible()
    expect(
        page.get_by_role("cell", name=re.compile("delivery address changed by support: holder phoned"))
    ).to_be_visible()
    sent = queued(stack)
    assert [(m.get("kind"), m["recipient"]["postcode"]) for m in sent] == [("address_amendment", "LS2 9JT")]

    # a holder without the reference: found by the surname and postcode the parcel now goes to
    page.get_by_role("link", name="Find an order").first.click()
    page.get_by_label("Surname").fill("fictitious")
    page.get_by_label("Delivery postcode").fill("ls29jt")
    page.get_by_role("button", name="Find by surname and postcode").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    check(page, "console-find-by-recipient-errors")
    page.get_by_label("Reason").fill("holder phoned without the reference")
    page.get_by_role("button", name="Find by surname and postcode").click()
    expect(page.get_by_role("heading", name="1 order found")).to_be_visible()
    check(page, "console-find-by-recipient")
    page.get_by_role("link", name=order).click()
    expect(page.get_by_role("heading", name=re.compile(order))).to_be_visible()


def test_a_member_of_staff_with_an_authenticator_app_is_asked_for_its_code_before_the_console(page: Page, stack):
    import boto3

    from devstack.staff import add_staff_member

    settings = dict(line.split("=", 1) for line in stack["operator_file"].read_text().splitlines() if "=" in line)
    aws = boto3.session.Session(aws_access_key_id="moto", aws_secret_access_key="moto", region_name="eu-west-2")
    cognito = aws.client("cognito-idp", endpoint_url=stack["moto"])  # moto takes any credentials
    pool = settings["STAFF_USER_POOL_ID"].strip().strip("'\"")
    person = add_staff_member(cognito, pool, "mfa.person@staff.tracekit.invalid", "support", mfa=True)

    code = page.get_by_label("Enter the 6-digit code from your authenticator app")

    def password_step() -> None:
        page.goto(stack["console"] + "/")
        page.get_by_label("Email address").fill(person.username)
        page.get_by_label("Password").fill(person.password)
        page.get_by_role("button", name="Sign in").click()
        expect(code).to_be_visible()

    password_step()
    check(page, "console-sign-in-code")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the code")
    check(page, "console-sign-in-code-errors")
    page.goto(stack["console"] + "/support/orders")  # the password alone opens nothing
    expect(page.get_by_role("heading", name="Sign in to the staff console")).to_be_visible()

    password_step()
    code.fill("123456")  # moto accepts any 6 digits (docs/stack-findings.md)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Staff console")).to_be_visible()
    page.get_by_role("link", name="Find an order").first.click()
    expect(page.get_by_role("heading", name="Find an order")).to_be_visible()


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
    page.get_by_role("button", name="Find by reference").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "console-find-errors")
    page.get_by_label("Order reference").fill(order.lower())
    page.get_by_role("button", name="Find by reference").click()
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


def test_the_campaign_dashboard_draws_its_charts_beside_their_numbers(page: Page, stack):
    sign_in(page, stack, "finance")
    page.get_by_role("main").get_by_role("link", name="Campaign dashboard").click()
    expect(page.get_by_role("heading", name="Campaign dashboard")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^Orders per day"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^Time from order to first dispatch"))).to_be_visible()
    today = datetime.now(UTC).date().isoformat()
    expect(page.get_by_role("row", name=re.compile(rf"^{today} "))).to_be_visible()  # the demo order's day
    check(page, "console-dashboard")
    page.get_by_label("From (inclusive)").fill("yesterday")
    page.get_by_role("button", name="Show the period").click()
    expect(page.get_by_role("alert")).to_contain_text("from must be a date")
    check(page, "console-dashboard-errors")


def test_finance_reads_the_statement_and_the_exports_list(page: Page, stack):
    sign_in(page, stack, "finance")
    page.get_by_role("main").get_by_role("link", name="Kit maker's statement").click()
    page.get_by_label("From (inclusive)").fill("2026-13-01")
    page.get_by_role("button", name="Show the statement").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check(page, "console-statement-errors")
    today = datetime.now(UTC).date()
    page.get_by_label("From (inclusive)").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("To (exclusive)").fill((today + timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Show the statement").click()
    expect(page.get_by_role("row", name=re.compile("^Total owed "))).to_be_visible()
    check(page, "console-statement")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("kit-maker-statement-")
    page.get_by_role("link", name="Daily exports").first.click()
    expect(page.get_by_role("heading", name="Daily reconciliation")).to_be_visible()
    check(page, "console-exports")


def test_an_admin_makes_and_revokes_a_key_and_reads_the_audit_log(page: Page, stack):
    sign_in(page, stack, "admin")
    page.get_by_role("main").get_by_role("link", name="Partner API keys").click()
    page.get_by_role("button", name="Make the key").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose who the key is for")
    check(page, "console-keys-errors")
    page.get_by_label("The kit maker (fulfilment orders)").check()
    page.get_by_label("Whose key is it?").fill("Kit Maker Ltd (browser test)")
    page.get_by_role("button", name="Make the key").click()
    expect(page.get_by_role("heading", name="Key made")).to_be_visible()
    token = page.get_by_label("Token").input_value()
    assert token.startswith("tk_manufacturer_")
    check(page, "console-key-made")
    key_id = token.split("_")[2]
    page.get_by_role("link", name="Back to the keys").click()
    page.get_by_role("link", name=f"Revoke key {key_id}").click()
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    check(page, "console-key-revoke-errors")
    page.get_by_label("Reason").fill("made by the browser test")
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_text(f"Key {key_id} is revoked.")).to_be_visible()
    check(page, "console-keys")

    page.get_by_role("link", name="Audit log").first.click()
    page.get_by_label("Action").fill("admin.api_key.revoke")
    page.get_by_role("button", name="Show entries").click()
    expect(page.get_by_role("cell", name="made by the browser test")).to_be_visible()
    check(page, "console-audit")
    page.get_by_label("Order reference").fill("not a reference")
    page.get_by_role("button", name="Show entries").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an order reference")
    check(page, "console-audit-errors")


def test_the_register_admin_checks_an_export_switches_to_it_and_rolls_back(page: Page, stack, tmp_path):
    """The stack's own register plus one holder: checked, switched to, then rolled back, so the
    register the other tests use is the one live at the end."""
    import io

    from devstack.synthetic_register import LOCAL_EXTRA_ROWS, write_register

    text = io.StringIO()
    write_register(text, LOCAL_EXTRA_ROWS)  # what the stack loaded at start-up, for today
    good = tmp_path / "register.csv"
    good.write_text(text.getvalue() + "FA/99001,firearm,in force,2030-01-31,SW1A 2AA,no\n", encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text(text.getvalue() + "FA/99002,firearm,in force,2030-01-31,NOT A POSTCODE,no\n", encoding="utf-8")
    lines = text.getvalue().count("\n") + 1  # the line the added row is on

    sign_in(page, stack, "register-admin")
    page.get_by_role("main").get_by_role("link", name="The register").click()
    expect(page.get_by_role("heading", name="The register")).to_be_visible()
    check(page, "console-register")
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose the licensing system's CSV export")
    check(page, "console-register-errors")
    page.get_by_label("The licensing system's CSV export").set_input_files(broken)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_text("The file is refused: 1 problem")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(rf"^{lines} .*postcode", re.IGNORECASE))).to_be_visible()
    check(page, "console-register-rejected")

    page.get_by_label("The licensing system's CSV export").set_input_files(good)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("row", name=re.compile(rf"^Added 1 {lines}$"))).to_be_visible()
    check(page, "console-register-dry-run")
    page.get_by_label("The same CSV export").set_input_files(good)
    page.get_by_role("button", name="Switch the register to this file").click()
    expect(page.get_by_text("The register was switched to the file.")).to_be_visible()

    page.get_by_label("Reason").fill("browser test: back to the stack's register")
    page.get_by_role("button", name=re.compile("^Roll back to generation")).click()
    expect(page.get_by_text("The previous register is live again.")).to_be_visible()
    check(page, "console-register-rolled-back")


def test_an_admin_adds_a_member_of_staff_and_opens_an_account(page: Page, stack):
    sign_in(page, stack, "admin")
    page.get_by_role("main").get_by_role("link", name="Staff accounts").click()
    expect(page.get_by_role("link", name=stack["staff"]["support"][0])).to_be_visible()
    check(page, "console-staff")
    page.get_by_label("Their work email address").fill("new.starter@staff.tracekit.invalid")
    page.get_by_role("button", name="Add them").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose at least one group")
    check(page, "console-staff-errors")
    page.get_by_label("Their work email address").fill("new.starter@staff.tracekit.invalid")
    page.get_by_label("support: orders, refunds, the work list").check()
    page.get_by_role("button", name="Add them").click()
    expect(page.get_by_text("The account was made.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^new.starter@staff.tracekit.invalid support on"))).to_be_visible()

    page.get_by_role("link", name=stack["staff"]["support"][0]).click()
    expect(page.get_by_label("support", exact=True)).to_be_checked()
    check(page, "console-staff-account")
    page.get_by_role("button", name="Save the groups").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    check(page, "console-staff-account-errors")


def test_support_works_the_list_resolves_a_rejected_parcel_approves_a_replacement_and_erases(page: Page, stack):
    """Two holders' orders as they happen on the stack: one the kit maker rejects, one whose kit the
    holder reports has not arrived 11 days after posting. Support takes both from the work list."""
    import requests

    from chalicelib.domain.references import fulfilment_id_of
    from tests.e2e.test_in_chromium import REFERENCE, _as_if_posted_days_ago, answer_questions, status_of

    reference, postcode = synthetic_holders(free=False)[40]
    answer_questions(page, stack["app"], reference, postcode)
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    rejected = REFERENCE.search(page.content()).group(0)
    queued(stack)
    token = manufacturer_token(stack)
    refused = requests.post(
        f"{stack['app']}/manufacturer/fulfilment-orders/{fulfilment_id_of(rejected)}/reject",
        json={"reason": "address incomplete"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert refused.status_code == 200, refused.text

    reference, postcode = synthetic_holders(free=False)[41]
    answer_questions(page, stack["app"], reference, postcode)
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay", exact=True).click()
    lost = REFERENCE.search(page.content()).group(0)
    queued(stack)
    _as_if_posted_days_ago(stack, lost, days=11)
    status_of(page, stack, lost)
    page.get_by_label("Certificate reference").fill(reference)
    page.get_by_label("Postcode on your certificate").fill(postcode)
    page.get_by_label("This address is correct").check()
    page.get_by_role("button", name="Report kit not arrived").click()
    expect(page.get_by_text("You have told us that your kit has not arrived")).to_be_visible()

    sign_in(page, stack, "support")
    page.get_by_role("main").get_by_role("link", name="Orders needing a person").click()
    expect(page.get_by_role("row", name=re.compile(rf"^{rejected} paid order rejected"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(rf"^{lost} replacement requested"))).to_be_visible()
    check(page, "console-work-list")

    page.get_by_role("link", name=rejected).click()
    resolve = "Resolve by cancelling (refunded in full if paid)"
    page.get_by_role("link", name=resolve).click()
    page.get_by_role("button", name=resolve).click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    check(page, "console-action-errors")
    act(page, resolve, "holder asked to cancel rather than correct the address", opened=True)
    act(page, "Erase the name and address", "holder asked for erasure")
    expect(page.get_by_role("cell", name=re.compile("personal data erased"))).to_be_visible()

    page.goto(f"{stack['console']}/support/work-list")
    page.get_by_role("link", name=lost).click()
    act(page, "Approve the replacement", "not arrived after 11 days")
    assert [m["order_reference"] for m in wait_for_queued(stack)] == [lost]  # the replacement, to the kit maker
    act(page, "Resend the confirmation email", "holder lost the email")
    page.goto(f"{stack['console']}/support/work-list")
    expect(page.get_by_role("link", name=rejected)).to_have_count(0)
    expect(page.get_by_role("link", name=lost)).to_have_count(0)


def act(page: Page, action: str, reason: str, opened: bool = False) -> None:
    """One of support's actions from the order's page: its own page, a reason, done."""
    if not opened:
        page.get_by_role("link", name=action).click()
        check(page, "console-action-" + action.split()[0].lower())
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name=action).click()
    expect(page.get_by_text(f"Done: {action}")).to_be_visible()


def wait_for_queued(stack, timeout: float = 10) -> list[dict]:
    """The relay sends within a second or so on the stack (--schedule-seconds 1)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = queued(stack)
        if found:
            return found
        time.sleep(0.5)
    return []
