"""The staff console's journeys through its own Chalice app, against moto's Cognito user pool,
DynamoDB and the Stripe emulator: signing in (and multi-factor), the session's limits, each group
kept to its own pages, and support's and finance's jobs, each audited."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from chalicelib.domain.orders import PaymentState
from chalicelib.domain.staff import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT
from tests.journeys.console_browser import StaffBrowser
from tests.journeys.test_payment_events import paid_order

PERSONAL = ("Ada Example", "1 Test Street", "ada@example.com", "SW1A 2AA", "sw1a 2aa", "FA/1001")


@pytest.fixture
def console_client(deps):
    from chalice.test import Client

    from chalicelib import bootstrap
    from chalicelib.web.console import console

    bootstrap.use(deps)
    bootstrap.configure_logging()
    with Client(console, stage_name="test") as client:
        yield client
    bootstrap.reset()


@pytest.fixture
def staff(deps, settings):
    """One FICTITIOUS member of staff per group, as `make run` creates them: group -> (email, password)."""
    from devstack.staff import create_demo_staff

    made = create_demo_staff(settings.aws_endpoint_url, settings.region, settings.staff.user_pool_id, mfa=False)
    return {person.group: (person.username, person.password) for person in made}


def signed_in(console_client, staff, group: str) -> StaffBrowser:
    browser = StaffBrowser(console_client)
    answer = browser.sign_in(*staff[group])
    assert answer.status_code == 303 and answer.headers["Location"] == "/", answer.body
    return browser


def audit_entries(deps, **filters):
    now = deps.clock()
    return list(deps.audit.between(now - timedelta(days=1), now + timedelta(days=1), **filters))


def test_support_finds_an_order_and_refunds_part_of_it_and_the_refund_and_its_reason_are_audited(
    client, console_client, holders, stripe_emulator, staff
):
    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")

    found = support.get(f"/support/orders?reference={order.reference.lower()}")
    assert found.status_code == 303 and found.headers["Location"] == f"/support/orders/{order.reference}"
    page = support.get(found.headers["Location"])
    assert page.status_code == 200 and b"paid" in page.body
    assert b"Ada Example" not in page.body  # the name is shown only when asked for, with a reason

    refunded = support.post(f"/support/orders/{order.reference}/refund", {"amount": "2.50", "reason": "kit damaged"})
    assert refunded.status_code == 303
    again = support.post(f"/support/orders/{order.reference}/refund", {"amount": "2.50", "reason": "kit damaged"})
    assert again.status_code == 303  # the same form sent twice refunds once

    stored = holders.orders.get(order.reference)
    assert (stored.payment, stored.refunded_pence) == (PaymentState.PARTIALLY_REFUNDED, 250)
    refunds = audit_entries(holders, action="order.refund")
    assert [(e.actor, e.order_reference, e.reason) for e in refunds][-1] == (
        staff["support"][0],
        order.reference,
        "kit damaged",
    )
    assert any(e.action == "order.view" and e.order_reference == order.reference for e in audit_entries(holders))


def test_support_finds_an_order_by_the_delivery_surname_and_postcode_and_the_search_is_audited_without_them(
    client, console_client, holders, stripe_emulator, staff
):
    _, order = paid_order(client, holders, stripe_emulator)  # delivered to Ada Example, SW1A 2AA
    support = signed_in(console_client, staff, "support")
    search = {"surname": "EXAMPLE", "postcode": "sw1a2aa", "reason": "holder phoned without the reference"}
    assert support.get("/support/orders").status_code == 200
    found = support.post("/support/orders/by-recipient", search)
    assert found.status_code == 200 and b"1 order found" in found.body
    assert f'href="/support/orders/{order.reference}"'.encode() in found.body
    assert b"Ada" not in found.body  # the list names orders, not people
    missed = support.post("/support/orders/by-recipient", {**search, "surname": "Exampel"})
    assert missed.status_code == 200 and b"0 orders found" in missed.body
    for wrong, message in (
        ({"reason": " "}, b"Enter the reason"),
        ({"postcode": "SW1"}, b"Enter a"),
        ({"surname": "-"}, b"Enter the surname"),
    ):
        refused = support.post("/support/orders/by-recipient", {**search, **wrong})
        assert refused.status_code == 400 and message in refused.body, (wrong, refused.body[:300])

    searches = audit_entries(holders, action="order.find_by_recipient")
    assert sorted((e.actor, e.reason, e.details["found"], e.details["orders"]) for e in searches) == [
        (staff["support"][0], "holder phoned without the reference", "0", ""),
        (staff["support"][0], "holder phoned without the reference", "1", order.reference),
    ]
    logged = " ".join(f"{e.reason} {e.detail}" for e in audit_entries(holders)).lower()
    assert "example" not in logged.replace("@staff.tracekit.invalid", "") and "sw1a" not in logged
    finance = signed_in(console_client, staff, "finance")
    finance.get("/")
    refused = finance.post("/support/orders/by-recipient", search)
    assert refused.status_code == 403 and b"not in the group" in refused.body


def test_the_dashboard_counts_paid_and_free_orders_against_the_letters_with_charts_and_their_numbers(
    client, console_client, holders, stripe_emulator, staff
):
    from dataclasses import replace

    from tests.journeys.test_manufacturer import free_order

    holders.settings = replace(holders.settings, letters_sent=40)
    _, paid = paid_order(client, holders, stripe_emulator)
    free_order(holders)
    support = signed_in(console_client, staff, "support")
    support.get(f"/support/orders/{paid.reference}")
    assert (
        support.post(f"/support/orders/{paid.reference}/refund", {"amount": "2.50", "reason": "x"}).status_code == 303
    )

    finance = signed_in(console_client, staff, "finance")
    page = finance.get("/dashboard")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.body.decode()))
    assert page.status_code == 200
    assert "Orders 2 (1 paid, 1 free)" in text and "Uptake 5.0% of the 40 letters sent" in text
    assert "Refunds 1 order, £2.50 in all" in text and "Nothing dispatched yet" in text
    today = holders.clock().date().isoformat()
    assert f"{today} 1 1" in text  # the day's row of the table beside the chart: paid, free
    body = page.body.decode()
    assert body.count('<svg role="img"') == 2 and "<script" not in body and "<style" not in body
    [viewed] = audit_entries(holders, action="dashboard.view")
    assert viewed.actor == staff["finance"][0] and viewed.details["from"] < today < viewed.details["to"]

    wrong = finance.get("/dashboard?from=soon&to=")
    assert wrong.status_code == 400 and b"from must be a date" in wrong.body
    assert signed_in(console_client, staff, "register-admin").get("/dashboard").status_code == 200


def test_a_refund_form_with_a_wrong_amount_is_shown_again_with_the_reason_and_nothing_is_refunded(
    client, console_client, holders, stripe_emulator, staff
):
    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")
    support.get(f"/support/orders/{order.reference}")
    for amount, message in (
        ("lots", b"pounds and pence"),
        ("9.00", b"between 1 and 895 pence"),
        ("0.001", b"more than"),
    ):
        answer = support.post(f"/support/orders/{order.reference}/refund", {"amount": amount, "reason": "x"})
        assert answer.status_code == 400 and message in answer.body, (amount, answer.body[:200])
    no_reason = support.post(f"/support/orders/{order.reference}/refund", {"amount": "1", "reason": " "})
    assert no_reason.status_code == 400 and b"Enter the reason" in no_reason.body
    assert holders.orders.get(order.reference).refunded_pence == 0


def test_the_holders_name_and_address_are_shown_only_with_a_reason_and_that_viewing_is_audited(
    client, console_client, holders, stripe_emulator, staff
):
    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")
    support.get(f"/support/orders/{order.reference}")
    refused = support.post(f"/support/orders/{order.reference}/delivery", {"purpose": ""})
    assert refused.status_code == 400 and b"Ada Example" not in refused.body
    shown = support.post(f"/support/orders/{order.reference}/delivery", {"purpose": "holder rang about delivery"})
    assert shown.status_code == 200 and b"Ada Example" in shown.body and b"1 Test Street" in shown.body
    views = audit_entries(holders, action="order.personal_data.view")
    assert [(e.order_reference, e.reason) for e in views] == [(order.reference, "holder rang about delivery")]


def test_a_wrong_password_is_refused_with_one_message_audited_and_no_session(console_client, deps, staff):
    browser = StaffBrowser(console_client)
    email, _password = staff["support"]
    refused = browser.sign_in(email, "not-the-password-1A!")
    unknown = StaffBrowser(console_client).sign_in("nobody@staff.tracekit.invalid", "not-the-password-1A!")
    for answer in (refused, unknown):
        assert answer.status_code == 400 and b"The email address or password is not right" in answer.body
    assert browser.get("/").status_code == 303  # still signed out
    assert [e.actor for e in audit_entries(deps, action="signin.refused")].count(email) == 1


def test_the_sign_in_form_needs_its_own_token_and_a_same_origin_post(console_client, deps, staff):
    email, password = staff["support"]
    browser = StaffBrowser(console_client)
    browser.get("/sign-in")
    forged = browser.post("/sign-in", {"username": email, "password": password}, token="0" * 32)
    assert forged.status_code == 403
    cross_site = browser.post(
        "/sign-in", {"username": email, "password": password}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    assert not audit_entries(deps, action="signin")


def test_with_multi_factor_on_the_code_is_asked_for_before_the_session_starts(console_client, deps, settings):
    from devstack.staff import create_demo_staff

    people = create_demo_staff(settings.aws_endpoint_url, settings.region, settings.staff.user_pool_id, mfa=True)
    person = next(p for p in people if p.group == "finance")
    browser = StaffBrowser(console_client)
    asked = browser.sign_in(person.username, person.password)
    assert asked.status_code == 200 and b"code from your authenticator app" in asked.body
    assert browser.get("/finance/reconciliation").status_code == 303  # half signed in opens nothing
    empty = browser.post("/sign-in/answer", {"answer": ""})
    assert empty.status_code == 400
    done = browser.post("/sign-in/answer", {"answer": "123456"})  # moto accepts any code (docs/stack-findings.md)
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert browser.get("/finance/reconciliation").status_code == 200


def test_a_session_ends_after_15_idle_minutes_and_after_8_hours_however_busy(console_client, deps, staff, clock):
    idle = signed_in(console_client, staff, "support")
    clock.advance(IDLE_TIMEOUT - timedelta(seconds=5))
    assert idle.get("/support/orders").status_code == 200
    clock.advance(IDLE_TIMEOUT + timedelta(seconds=1))
    ended = idle.get("/support/orders")
    assert ended.status_code == 303 and ended.headers["Location"] == "/sign-in?ended=1"

    busy = signed_in(console_client, staff, "support")
    started = clock()
    while clock() - started < ABSOLUTE_TIMEOUT - timedelta(minutes=10):
        clock.advance(timedelta(minutes=10))
        assert busy.get("/support/orders").status_code == 200
    clock.advance(timedelta(minutes=10))
    assert busy.get("/support/orders").status_code == 303


def test_a_tampered_or_signed_out_session_is_refused(console_client, deps, staff):
    browser = signed_in(console_client, staff, "support")
    real = browser.cookies["tracekit_staff"]
    browser.cookies["tracekit_staff"] = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    assert browser.get("/support/orders").status_code == 303
    browser.cookies["tracekit_staff"] = real
    page = browser.get("/support/orders")
    assert page.status_code == 200
    assert browser.post("/sign-out", {}, token="f" * 32).status_code == 403  # a forged sign-out does nothing
    out = browser.post("/sign-out", {})
    assert out.status_code == 303 and out.headers["Location"] == "/sign-in?signed_out=1"
    browser.cookies["tracekit_staff"] = real  # the old cookie, kept by someone
    assert browser.get("/support/orders").status_code == 303
    assert [e.action for e in audit_entries(deps, actor=staff["support"][0])].count("signout") == 1


def test_the_session_cookie_is_httponly_samesite_strict_and_a_form_needs_the_sessions_token(console_client, staff):
    browser = StaffBrowser(console_client)
    browser.get("/sign-in")
    signed = browser.post("/sign-in", dict(zip(("username", "password"), staff["finance"], strict=True)))
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert browser.post("/sign-out", {}, token="").status_code == 403


# Every console route, with the group it belongs to (None: any signed-in member of staff).
ROUTES = [
    ("GET", "/", None),
    ("GET", "/dashboard", None),
    ("GET", "/support/orders", "support"),
    ("POST", "/support/orders/by-recipient", "support"),
    ("GET", "/support/orders/TK-AAAAA-AAAAA", "support"),
    ("POST", "/support/orders/TK-AAAAA-AAAAA/delivery", "support"),
    ("POST", "/support/orders/TK-AAAAA-AAAAA/refund", "support"),
    ("GET", "/support/orders/TK-AAAAA-AAAAA/actions/erase", "support"),
    ("POST", "/support/orders/TK-AAAAA-AAAAA/actions/erase", "support"),
    ("GET", "/support/orders/TK-AAAAA-AAAAA/address", "support"),
    ("POST", "/support/orders/TK-AAAAA-AAAAA/address", "support"),
    ("GET", "/support/work-list", "support"),
    ("GET", "/finance/reconciliation", "finance"),
    ("GET", "/finance/reconciliation/download?from=2026-11-01&to=2026-11-02", "finance"),
    ("GET", "/finance/statement", "finance"),
    ("GET", "/finance/statement/download?from=2026-11-01&to=2026-11-02", "finance"),
    ("GET", "/finance/exports", "finance"),
    ("GET", "/finance/exports/download?key=reconciliation/none.csv", "finance"),
    ("GET", "/admin/keys", "admin"),
    ("POST", "/admin/keys", "admin"),
    ("GET", "/admin/keys/0000000000000000/revoke", "admin"),
    ("POST", "/admin/keys/0000000000000000/revoke", "admin"),
    ("GET", "/admin/audit", "admin"),
    ("GET", "/admin/audit/download", "admin"),
    ("GET", "/register", "register-admin"),
    ("POST", "/register/check", "register-admin"),
    ("POST", "/register/switch", "register-admin"),
    ("POST", "/register/rollback", "register-admin"),
    ("GET", "/admin/staff", "admin"),
    ("POST", "/admin/staff", "admin"),
    ("GET", "/admin/staff/no-such-account", "admin"),
    ("POST", "/admin/staff/no-such-account/groups", "admin"),
    ("POST", "/admin/staff/no-such-account/access", "admin"),
    ("POST", "/sign-out", None),
]


WALK_FORM = {"reason": "walk", "purpose": "walk", "amount": ""}
UPLOADS = {"/register/check", "/register/switch"}  # forms with a file: multipart/form-data


def test_every_console_route_is_refused_without_a_session_and_to_every_other_group(console_client, deps, staff):
    from chalicelib.web.console import console

    declared = {(method, path) for path, entry in console.routes.items() for method in entry}
    public = {("GET", "/sign-in"), ("POST", "/sign-in"), ("GET", "/assets/tracekit.css")}
    public |= {("GET", "/sign-in/set-up-authenticator"), ("POST", "/sign-in/answer")}
    walked = {
        (
            m,
            p.split("?")[0]
            .replace("TK-AAAAA-AAAAA", "{reference}")
            .replace("/erase", "/{action}")
            .replace("0000000000000000", "{key_id}")
            .replace("no-such-account", "{sub}"),
        )
        for m, p, _ in ROUTES
    }
    assert declared - public == walked, "a console route is missing from ROUTES"

    nobody = StaffBrowser(console_client)
    browsers = {group: signed_in(console_client, staff, group) for group in staff}

    def send(browser, method, path, **token):
        if method == "GET":
            return browser.get(path)
        if path in UPLOADS:
            return browser.upload(path, WALK_FORM, b"")
        return browser.post(path, {} if token else WALK_FORM, **token)

    for method, path, owner in ROUTES:
        anonymous = send(nobody, method, path, token="")
        assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/sign-in", (method, path)
        for group, browser in browsers.items():
            answer = send(browser, method, path)
            if owner is None or owner == group:
                assert answer.status_code != 403, (method, path, group)
            else:
                assert answer.status_code == 403, (method, path, group, answer.status_code)
    refused = audit_entries(deps, action="refused")
    assert len(refused) == sum(len(staff) - 1 for _m, _p, owner in ROUTES if owner is not None)


def test_finance_sees_supports_refund_in_the_reconciliation_and_downloads_it(
    client, console_client, holders, stripe_emulator, staff, clock
):
    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")
    support.get(f"/support/orders/{order.reference}")
    assert (
        support.post(f"/support/orders/{order.reference}/refund", {"amount": "", "reason": "goodwill"}).status_code
        == 303
    )

    finance = signed_in(console_client, staff, "finance")
    day = clock().date()
    period = f"from={day.isoformat()}&to={(day + timedelta(days=1)).isoformat()}"
    page = finance.get(f"/finance/reconciliation?{period}")
    assert page.status_code == 200
    text = page.body.decode()
    assert "refunds_pence" in text and "895" in text
    csv_file = finance.get(f"/finance/reconciliation/download?{period}&format=csv")
    assert csv_file.status_code == 200 and order.reference in csv_file.body.decode()
    assert "attachment" in csv_file.headers["Content-Disposition"]
    xlsx = finance.get(f"/finance/reconciliation/download?{period}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.body[:2] == b"PK"
    bad = finance.get("/finance/reconciliation?from=2026-13-01&to=x")
    assert bad.status_code == 400 and b"must be a date" in bad.body
    assert [e.action for e in audit_entries(holders, actor=staff["finance"][0])].count(
        "finance.reconciliation.view"
    ) == 1


def test_no_console_journey_puts_personal_data_in_a_url_or_a_log_line(
    client, console_client, holders, stripe_emulator, staff, caplog
):
    _, order = paid_order(client, holders, stripe_emulator)
    with caplog.at_level(logging.DEBUG):
        support = signed_in(console_client, staff, "support")
        answers = [support.get(f"/support/orders?reference={order.reference}")]
        answers.append(support.post(f"/support/orders/{order.reference}/delivery", {"purpose": "check"}))
        search = {"surname": "Example", "postcode": "SW1A 2AA", "reason": "no reference"}
        support.get("/support/orders")
        answers.append(support.post("/support/orders/by-recipient", search))
        assert answers[-1].status_code == 200
        answers.append(support.post(f"/support/orders/{order.reference}/refund", {"amount": "1", "reason": "r"}))
        answers.append(support.post("/sign-out", {}))
    locations = [a.headers.get("Location", "") for a in answers]
    for personal in PERSONAL:
        assert all(personal not in where for where in locations), personal
        assert all(personal not in record.getMessage() for record in caplog.records), personal


def test_support_works_through_the_list_and_erases_an_order_with_a_reason(
    client, console_client, holders, stripe_emulator, staff
):

    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")
    assert support.get("/support/work-list").status_code == 200
    page = support.get(f"/support/orders/{order.reference}/actions/erase")
    assert page.status_code == 200 and b"Erase the name and address" in page.body
    no_reason = support.post(f"/support/orders/{order.reference}/actions/erase", {"reason": ""})
    assert no_reason.status_code == 400 and b"Enter the reason" in no_reason.body
    erased = support.post(f"/support/orders/{order.reference}/actions/erase", {"reason": "holder asked"})
    assert erased.status_code == 303 and erased.headers["Location"].endswith("?done=erase")
    stored = holders.orders.get(order.reference)
    assert stored.erased_at is not None
    assert b"Erased" in support.get(f"/support/orders/{order.reference}").body
    unknown = support.post(f"/support/orders/{order.reference}/actions/format-disk", {"reason": "x"})
    assert unknown.status_code == 404
    resend = support.post(f"/support/orders/{order.reference}/actions/resend-dispatch", {"reason": "x"})
    assert resend.status_code == 409  # never dispatched: nothing to resend
    actions = [e.action for e in audit_entries(holders, order_reference=order.reference)]
    assert actions.count("order.erase") == 1


def test_finance_reads_the_kit_makers_statement_and_downloads_the_scheduled_exports(
    client, console_client, holders, stripe_emulator, staff, clock
):
    from chalicelib.domain.references import fulfilment_id_of
    from chalicelib.domain.times import to_iso
    from chalicelib.services.finance import export_previous_day, export_previous_month_statement
    from chalicelib.services.manufacturer import dispatch_fulfilment

    _, order = paid_order(client, holders, stripe_emulator)
    posted = {"kit_code": "K1", "carrier": "Royal Mail", "tracking_reference": "T1", "dispatched_at": to_iso(clock())}
    dispatch_fulfilment(fulfilment_id_of(order.reference), posted, "k", holders)
    day = clock().date()
    finance = signed_in(console_client, staff, "finance")
    period = f"from={day.isoformat()}&to={(day + timedelta(days=1)).isoformat()}"

    page = finance.get(f"/finance/statement?{period}").body.decode()
    assert "Kits by kind (1 kit)" in page and "£8.95" in page
    assert finance.get("/finance/statement?from=2026-13-01&to=x").status_code == 400
    csv_file = finance.get(f"/finance/statement/download?{period}&format=csv")
    assert csv_file.status_code == 200 and fulfilment_id_of(order.reference) in csv_file.body.decode()
    assert finance.get(f"/finance/statement/download?{period}&format=xlsx").body[:2] == b"PK"

    assert "None yet." in finance.get("/finance/exports").body.decode()
    noon = clock().replace(hour=12, minute=0, second=0, microsecond=0)
    clock.set(noon + timedelta(days=1))
    assert export_previous_day(holders)  # the day of the order
    clock.set(noon.replace(day=1) + timedelta(days=32))
    clock.set(clock().replace(day=1))
    assert export_previous_month_statement(holders)  # the month of the order, CSV and XLSX
    finance = signed_in(console_client, staff, "finance")  # a month on: the earlier session has ended
    listed = finance.get("/finance/exports").body.decode()
    key = f"reconciliation/{day:%Y/%m}/reconciliation-{day.isoformat()}.csv"
    assert f"reconciliation-{day.isoformat()}.csv" in listed
    assert f"kit-maker-statement-{day:%Y-%m}.csv" in listed and f"kit-maker-statement-{day:%Y-%m}.xlsx" in listed
    downloaded = finance.get(f"/finance/exports/download?key={key}")
    assert downloaded.status_code == 200 and order.reference in downloaded.body.decode()
    assert finance.get("/finance/exports/download?key=reconciliation/nothing-here.csv").status_code == 404
    assert finance.get("/finance/exports/download?key=elsewhere/secret.csv").status_code == 404
    downloads = [e for e in audit_entries(holders, actor=staff["finance"][0]) if e.action == "finance.exports.download"]
    assert [e.details["key"] for e in downloads] == [key]


def test_an_admin_makes_a_key_that_works_once_shown_revokes_it_and_finds_both_in_the_audit_log(
    client, console_client, holders, staff
):
    import csv
    import io
    import re

    from tests.journeys.test_manufacturer import call

    admin = signed_in(console_client, staff, "admin")
    assert b"No keys yet." in admin.get("/admin/keys").body
    refused = admin.post("/admin/keys", {"label": ""})
    assert (
        refused.status_code == 400
        and b"Choose who the key is for" in refused.body
        and b"Enter whose key" in refused.body
    )
    made = admin.post("/admin/keys", {"scope": "manufacturer", "label": "Kit Maker Ltd"})
    assert made.status_code == 200
    token = re.search(rb'value="(tk_manufacturer_[^"]+)"', made.body).group(1).decode()
    assert call(client, token, "GET", "/fulfilment-orders")[0] == 200  # the partner's API takes it
    listed = admin.get("/admin/keys").body.decode()
    _tk, _scope, key_id, secret = token.split("_", 3)
    assert key_id in listed and "Kit Maker Ltd" in listed and secret not in listed

    no_reason = admin.post(f"/admin/keys/{key_id}/revoke", {"reason": " "})
    assert no_reason.status_code == 400 and b"Enter the reason" in no_reason.body
    assert holders.api_keys.find(key_id).active
    revoked = admin.post(f"/admin/keys/{key_id}/revoke", {"reason": "contract ended"})
    assert revoked.status_code == 303 and revoked.headers["Location"] == f"/admin/keys?revoked={key_id}"
    assert call(client, token, "GET", "/fulfilment-orders")[0] in (401, 403)
    assert b"revoked" in admin.get(revoked.headers["Location"]).body
    assert admin.get("/admin/keys/ffffffffffffffff/revoke").status_code == 404

    page = admin.get("/admin/audit?action=admin.api_key.revoke").body.decode()
    assert "contract ended" in page and f"key_id={key_id}" in page and "admin.api_key.create" not in page
    wrong = admin.get("/admin/audit?from=2026-02-30&order=nonsense")
    assert (
        wrong.status_code == 400 and b"from must be a date" in wrong.body and b"Enter an order reference" in wrong.body
    )
    file = admin.get(f"/admin/audit/download?actor={staff['admin'][0]}")
    rows = list(csv.DictReader(io.StringIO(file.body.decode())))
    assert file.headers["Content-Type"].startswith("text/csv")
    # one row per action (the test clock stands still, so their order among equal times is the ids')
    assert sorted(r["action"] for r in rows) == [
        "admin.api_key.create",
        "admin.api_key.revoke",
        "admin.audit.view",
        "signin",
    ]
    assert {r["actor"] for r in rows} == {staff["admin"][0]} and token not in file.body.decode()
    created = [e for e in audit_entries(holders, action="admin.api_key.create")]
    assert [(e.actor, e.details) for e in created] == [(staff["admin"][0], {"key_id": key_id, "scope": "manufacturer"})]


NEW_ADDRESS = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "ls1 4ap"}


def test_support_changes_the_address_for_a_holder_who_asked_and_the_kit_maker_is_sent_an_amendment(
    client, console_client, holders, stripe_emulator, staff, caplog
):
    _, order = paid_order(client, holders, stripe_emulator)
    support = signed_in(console_client, staff, "support")
    assert support.get(f"/support/orders/{order.reference}/address").status_code == 200
    wrong = support.post(
        f"/support/orders/{order.reference}/address", {**NEW_ADDRESS, "postcode": "LEEDS", "reason": ""}
    )
    assert wrong.status_code == 400 and b"Enter the reason" in wrong.body and b"postcode" in wrong.body.lower()
    assert holders.orders.delivery_of(holders.orders.get(order.reference)).postcode == "SW1A 2AA"

    with caplog.at_level(logging.DEBUG):
        changed = support.post(f"/support/orders/{order.reference}/address", {**NEW_ADDRESS, "reason": "holder moved"})
    assert changed.status_code == 303 and changed.headers["Location"].endswith("?done=change-address")
    stored = holders.orders.get(order.reference)
    delivery = holders.orders.delivery_of(stored)
    assert (delivery.full_name, delivery.postcode, delivery.email) == ("Sam New", "LS1 4AP", "ada@example.com")
    assert (stored.amendments_issued, stored.amendment_sent) == (1, 1)  # the amendment is on the kit maker's queue
    assert any(e.change.startswith("delivery address changed by support: holder moved") for e in stored.history)
    again = support.post(f"/support/orders/{order.reference}/address", {**NEW_ADDRESS, "reason": "holder moved"})
    assert again.status_code == 303 and holders.orders.get(order.reference).amendments_issued == 1
    entries = audit_entries(holders, action="order.address.change")
    assert [(e.order_reference, e.reason) for e in entries] == [(order.reference, "holder moved")] * 2
    assert all("Leeds" not in r.getMessage() and "New Road" not in r.getMessage() for r in caplog.records)
    assert b"Done: the delivery name and address changed" in support.get(changed.headers["Location"]).body


def test_support_sends_a_rejected_parcel_to_a_new_address_and_cannot_change_an_accepted_one(
    client, console_client, holders, stripe_emulator, staff
):
    from chalicelib.domain.orders import FulfilmentState
    from chalicelib.domain.references import fulfilment_id_of
    from chalicelib.services.manufacturer import accept_fulfilment, reject_fulfilment
    from tests.builders import delivery_form
    from tests.journeys.browser import Browser
    from tests.journeys.test_payment_events import the_order

    _, rejected = paid_order(client, holders, stripe_emulator)
    reject_fulfilment(fulfilment_id_of(rejected.reference), "address not found", "k", holders)
    support = signed_in(console_client, staff, "support")
    support.get(f"/support/orders/{rejected.reference}/address")
    sent = support.post(f"/support/orders/{rejected.reference}/address", {**NEW_ADDRESS, "reason": "holder rang"})
    assert sent.status_code == 303
    order = holders.orders.get(rejected.reference)
    assert (order.fulfilment_attempt, order.fulfilment) == (2, FulfilmentState.RELEASED)
    assert holders.orders.delivery_of(order).town == "Leeds"

    free = Browser(client)
    free.post("/order/certificate", {"reference": "FA/2000", "postcode": "SW1A 2AA"})
    free.post("/order/delivery", delivery_form())
    free.post("/order/confirm", {"confirm": "yes"})
    accepted = the_order(holders, free)
    accept_fulfilment(fulfilment_id_of(accepted.reference), "k", holders)
    locked = support.post(f"/support/orders/{accepted.reference}/address", {**NEW_ADDRESS, "reason": "holder rang"})
    assert locked.status_code == 409 and b"The address cannot be changed now" in locked.body
    assert holders.orders.delivery_of(holders.orders.get(accepted.reference)).town != "Leeds"


def test_an_admin_adds_someone_moves_a_person_between_groups_and_turns_an_account_off_and_on(
    console_client, deps, staff
):
    import re

    admin = signed_in(console_client, staff, "admin")
    listed = admin.get("/admin/staff").body.decode()
    assert all(email in listed for email, _ in staff.values())
    wrong = admin.post("/admin/staff", {"email": "not-an-email"})
    assert wrong.status_code == 400 and "Enter an email address" in wrong.body.decode()
    no_group = admin.post("/admin/staff", {"email": "new.person@example.org"})
    assert no_group.status_code == 400 and b"Choose at least one group" in no_group.body
    body = "email=new.person%40example.org&groups=support&groups=finance&csrf_token=" + admin.csrf
    invited = console_client.http.post("/admin/staff", headers=admin._headers(FORM_HEADERS), body=body)
    assert invited.status_code == 303 and invited.headers["Location"] == "/admin/staff?invited=1"
    listed = admin.get("/admin/staff").body.decode()
    assert re.search(
        r"new\.person@example\.org</a></td>\s*<td[^>]*>finance, support</td>\s*<td[^>]*>on · not signed in yet", listed
    )
    again = console_client.http.post("/admin/staff", headers=admin._headers(FORM_HEADERS), body=body)
    assert again.status_code == 400 and b"already has an account" in again.body

    support_email, support_password = staff["support"]
    sub = re.search(rf'href="/admin/staff/([^"]+)">{re.escape(support_email)}<', listed).group(1)
    assert "@" not in sub  # accounts are named in URLs by Cognito's id, never by email
    admin.get(f"/admin/staff/{sub}")
    no_reason = admin.post(f"/admin/staff/{sub}/groups", {"groups": "finance", "groups_reason": ""})
    assert no_reason.status_code == 400 and b"Enter the reason" in no_reason.body
    moved = admin.post(f"/admin/staff/{sub}/groups", {"groups": "finance", "groups_reason": "moved to finance"})
    assert moved.status_code == 303
    person = signed_in(console_client, staff, "support")  # their next sign-in carries the new group
    assert person.get("/finance/reconciliation").status_code == 200
    assert person.get("/support/work-list").status_code == 403

    admin.get(f"/admin/staff/{sub}")
    assert admin.post(f"/admin/staff/{sub}/access", {"access": "off", "access_reason": "left"}).status_code == 303
    assert StaffBrowser(console_client).sign_in(support_email, support_password).status_code == 400
    admin.get(f"/admin/staff/{sub}")
    assert admin.post(f"/admin/staff/{sub}/access", {"access": "on", "access_reason": "back"}).status_code == 303
    assert StaffBrowser(console_client).sign_in(support_email, support_password).status_code == 303

    own = re.search(rf'href="/admin/staff/([^"]+)">{re.escape(staff["admin"][0])}<', listed).group(1)
    admin.get(f"/admin/staff/{own}")
    kept = admin.post(f"/admin/staff/{own}/groups", {"groups": "support", "groups_reason": "oops"})
    assert kept.status_code == 400 and b"cannot take yourself out of the admin group" in kept.body
    actions = [e.action for e in audit_entries(deps, actor=staff["admin"][0]) if e.action.startswith("admin.staff")]
    assert sorted(actions) == ["admin.staff.disable", "admin.staff.enable", "admin.staff.groups", "admin.staff.invite"]


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def register_file(*rows) -> bytes:
    from tests.integration.test_register_import_cli import csv_text

    return csv_text(list(rows)).encode()


def test_the_register_admin_checks_an_export_switches_to_it_and_rolls_it_back(console_client, deps, staff):
    from chalicelib import services
    from chalicelib.domain.errors import CertificateNotAccepted
    from tests.builders import load_register, register_row

    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA"))
    admin = signed_in(console_client, staff, "register-admin")
    page = admin.get("/register").body.decode()
    assert "2 entries" in page and "Roll back" not in page  # the builders' register: one generation

    broken = register_file(register_row("FA/1001", "SW1A 2AA"), register_row("FA/1003", "NOT A POSTCODE"))
    checked = admin.upload("/register/check", {}, broken).body.decode()
    assert "The file is refused: 1 problem" in checked and re.search(r">3</td><td[^>]*>[^<]*postcode", checked)
    assert "Switch the register" not in checked

    nothing = admin.upload("/register/check", {}, None)
    assert nothing.status_code == 400 and b"Choose the licensing system&#39;s CSV export" in nothing.body

    good = register_file(
        register_row("FA/1001", "SW1A 2AA"),
        register_row("FA/1002", "SW1A 2AA", status="revoked"),
        register_row("FA/1003", "E1 6AN", free_kit="yes"),
    )
    dry_run = admin.upload("/register/check", {}, good).body.decode()
    assert re.search(r"Added</th><td[^>]*>1</td><td[^>]*>4<", dry_run) and re.search(
        r"Changed</th><td[^>]*>1</td><td[^>]*>3<", dry_run
    )
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]{64})"', dry_run).group(1)
    live = re.search(r'name="live" value="(\d+)"', dry_run).group(1)
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1003", "E1 6AN", deps)  # the check changed nothing

    other = register_file(register_row("FA/1001", "SW1A 2AA"))
    refused = admin.upload("/register/switch", {"fingerprint": fingerprint, "live": live}, other)
    assert refused.status_code == 400 and b"not the file the check showed" in refused.body
    switched = admin.upload("/register/switch", {"fingerprint": fingerprint, "live": live}, good)
    assert switched.status_code == 303 and switched.headers["Location"] == "/register?done=switched"
    assert services.check_certificate("FA/1003", "E1 6AN", deps).price.pence == 0  # its free kit flag
    stale = admin.upload("/register/switch", {"fingerprint": fingerprint, "live": live}, good)
    assert stale.status_code == 409 and b"The register changed meanwhile" in stale.body

    page = admin.get("/register").body.decode()
    new_live = re.search(r'name="live" value="(\d+)"', page).group(1)
    assert admin.post("/register/rollback", {"reason": "", "live": new_live}).status_code == 400
    rolled = admin.post("/register/rollback", {"reason": "wrong export", "live": new_live})
    assert rolled.status_code == 303 and rolled.headers["Location"] == "/register?done=rolled-back"
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1003", "E1 6AN", deps)
    actions = [
        e.action for e in audit_entries(deps, actor=staff["register-admin"][0]) if e.action.startswith("register")
    ]
    assert sorted(actions) == [
        "register.import.dry_run",
        "register.import.dry_run",
        "register.import.switch",
        "register.rollback",
    ]
