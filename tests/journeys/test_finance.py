"""Finance's reconciliation on the real stack: orders on DynamoDB (moto), money in the Stripe
emulator (balance transactions with UK card fees, refunds, disputes, payouts), read through the
finance API with its own key, the CLI, and the daily export to S3."""

from __future__ import annotations

import csv
import json
import io
import stat
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from ops.cli import main as cli
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_payment_events import deliver, events


@pytest.fixture
def today(deps):
    """Stripe's emulator stamps real times, so the orders do too, and the period is today (UTC)."""
    now = datetime.now(timezone.utc)
    deps.clock.set(now)
    return now.date()


@pytest.fixture
def holders(deps, today):
    load_register(
        deps,
        *[register_row(f"FA/{1000 + i}", "SW1A 2AA") for i in range(4)],
        register_row("FA/2000", "SW1A 2AA", free_kit="yes"),
    )
    return deps


def buy(client, emulator, number: int, pay: bool = True):
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": f"FA/{1000 + number}", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    if pay:
        emulator.pay(session_id)
        deliver(client, events(emulator, "checkout.session.completed")[-1])
    return session_id


def a_day_of_business(client, deps, emulator):
    """Three paid orders (one then half-refunded, one disputed), a free one, an expired one."""
    buy(client, emulator, 0)
    buy(client, emulator, 1)
    buy(client, emulator, 2)
    intents = [e["data"]["object"]["payment_intent"] for e in events(emulator, "checkout.session.completed")]
    emulator.refund(intents[1], 300)
    deliver(client, events(emulator, "charge.refunded")[-1])
    emulator.dispute(intents[2])
    deliver(client, events(emulator, "charge.dispute.created")[-1])
    expired = buy(client, emulator, 3, pay=False)
    emulator.expire(expired)
    deliver(client, events(emulator, "checkout.session.expired")[-1])
    free = Browser(client)
    free.post("/order/certificate", {"reference": "FA/2000", "postcode": "SW1A 2AA"})
    free.post("/order/delivery", delivery_form())
    free.post("/order/confirm", {"confirm": "yes"})


def sections(text: str) -> dict[str, list[list[str]]]:
    found, current = {}, None
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        if row and row[0].startswith("# "):
            current = row[0][2:]
            found[current] = []
        elif row:
            found[current].append(row)
    return found


def finance_get(client, token, path):
    return client.http.get(path, headers={"Authorization": f"Bearer {token}"})


def test_the_finance_api_reconciles_a_day_to_hand_computed_figures(client, holders, stripe_emulator, today):
    a_day_of_business(client, holders, stripe_emulator)
    token = create_api_key(Scope.FINANCE, "Finance", holders.api_keys, holders.clock())[1]
    response = finance_get(client, token, f"/finance/reconciliation?from={today}&to={today + timedelta(days=1)}")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    found = sections(response.body.decode("utf-8"))
    summary = dict(found["Summary"][1:])
    # 3 charges of 895 with fees of 1.5% + 20p = 33 each; a 300 refund; a 895 dispute with a 2000 fee
    assert (summary["charges"], summary["gross_pence"], summary["fees_pence"]) == ("3", "2685", str(3 * 33 + 2000))
    assert summary["net_pence"] == str(3 * 862 - 300 - 895 - 2000)
    assert (summary["refunds_pence"], summary["disputes_pence"], summary["free_kits"]) == ("300", "895", "1")
    assert (summary["payment partially_refunded"], summary["payment disputed"], summary["order expired"]) == (
        "1",
        "1",
        "1",
    )
    assert summary["discrepancies: Disputes"] == "2"
    assert sum(int(v) for k, v in summary.items() if k.startswith("discrepancies")) == 2
    body = response.body.decode("utf-8")
    for personal in ("Ada", "Test Street", "ada@example.com", "SW1A"):
        assert personal not in body


def test_a_payout_is_joined_to_the_transactions_it_paid(client, holders, stripe_emulator, today):
    buy(client, stripe_emulator, 0)
    payout = stripe_emulator.run_payout(int((datetime.now(timezone.utc) + timedelta(days=3)).timestamp()))
    token = create_api_key(Scope.FINANCE, "Finance", holders.api_keys, holders.clock())[1]
    response = finance_get(client, token, f"/finance/reconciliation?from={today}&to={today + timedelta(days=1)}")
    found = sections(response.body.decode("utf-8"))
    rows = [dict(zip(found["Reconciliation rows"][0], r, strict=True)) for r in found["Reconciliation rows"][1:]]
    [charge] = [r for r in rows if r["reporting_category"] == "charge"]
    assert charge["payout_id"] == payout["id"] and charge["net_pence"] == "862" and charge["fee_pounds"] == "0.33"
    assert f"payout {payout['id']}" in dict(found["Summary"][1:])


def test_each_key_opens_only_its_own_routes(client, holders, today):
    finance = create_api_key(Scope.FINANCE, "Finance", holders.api_keys, holders.clock())[1]
    manufacturer = create_api_key(Scope.MANUFACTURER, "Kit Maker", holders.api_keys, holders.clock())[1]
    period = f"from={today}&to={today + timedelta(days=1)}"
    assert finance_get(client, manufacturer, f"/finance/reconciliation?{period}").status_code == 403
    assert finance_get(client, finance, "/manufacturer/fulfilment-orders").status_code == 403
    assert finance_get(client, finance, f"/finance/reconciliation?{period}").status_code == 200
    assert finance_get(client, None, f"/finance/reconciliation?{period}").status_code in (401, 403)
    bad = finance_get(client, finance, "/finance/reconciliation?from=2026-12-01&to=2026-11-01")
    assert bad.status_code == 400 and b"to must be after from" in bad.body


def test_the_daily_export_run_twice_leaves_one_encrypted_object(client, holders, stripe_emulator, settings, today):
    buy(client, stripe_emulator, 0)
    tomorrow_morning = datetime.combine(today + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(
        hours=6, minutes=15
    )
    holders.clock.set(tomorrow_morning)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    client.lambda_.invoke("export_daily_reconciliation", event)
    client.lambda_.invoke("export_daily_reconciliation", event)
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    versions = s3.list_object_versions(Bucket=settings.exports_bucket).get("Versions", [])
    key = f"reconciliation/{today:%Y/%m}/reconciliation-{today.isoformat()}.csv"
    # the run also writes the statement of the month before the run's day, once
    month = f"{(today + timedelta(days=1)).replace(day=1) - timedelta(days=1):%Y-%m}"
    statements = [f"kit-maker-statement/{month[:4]}/kit-maker-statement-{month}.{fmt}" for fmt in ("csv", "xlsx")]
    assert sorted(v["Key"] for v in versions) == sorted([*statements, key])
    head = s3.head_object(Bucket=settings.exports_bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    body = s3.get_object(Bucket=settings.exports_bucket, Key=key)["Body"].read().decode("utf-8")
    assert dict(sections(body)["Summary"][1:])["charges"] == "1"


def test_the_cli_writes_an_xlsx(client, holders, stripe_emulator, environment, monkeypatch, tmp_path, today):
    from openpyxl import load_workbook

    buy(client, stripe_emulator, 0)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "november.xlsx"
    ran = CliRunner().invoke(
        cli,
        [
            "finance",
            "export",
            "--from",
            today.isoformat(),
            "--to",
            (today + timedelta(days=1)).isoformat(),
            "--format",
            "xlsx",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert ran.exit_code == 0, ran.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and [p.name for p in tmp_path.iterdir()] == [out.name]
    book = load_workbook(out, read_only=True)
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["gross_pence"] == 895 and summary["fees_pence"] == 33
    refused = CliRunner().invoke(cli, ["finance", "export", "--from", "x", "--to", "y", "--out", str(out)])
    assert refused.exit_code != 0 and "from must be a date" in refused.output


def test_the_kit_makers_statement_counts_kits_by_kind_at_the_unit_price(
    client, holders, stripe_emulator, environment, monkeypatch, tmp_path, today
):
    from chalicelib import services
    from chalicelib.domain.reconciliation import Period
    from chalicelib.domain.references import fulfilment_id_of
    from chalicelib.domain.times import to_iso
    from chalicelib.services.manufacturer import dispatch_fulfilment

    buy(client, stripe_emulator, 0)
    holders.clock.set(holders.clock() + timedelta(seconds=1))  # created in this order
    buy(client, stripe_emulator, 1)
    holders.clock.set(holders.clock() + timedelta(seconds=1))
    free = Browser(client)
    free.post("/order/certificate", {"reference": "FA/2000", "postcode": "SW1A 2AA"})
    free.post("/order/delivery", delivery_form())
    free.post("/order/confirm", {"confirm": "yes"})
    created = holders.finance_orders.created_in(Period(today, today + timedelta(days=1)))
    paid, cancelled, free_kit = [facts.reference for facts in sorted(created, key=lambda f: f.created_at)]
    posted = {
        "kit_code": "K1",
        "carrier": "Royal Mail",
        "tracking_reference": "T1",
        "dispatched_at": to_iso(holders.clock()),
    }
    dispatch_fulfilment(fulfilment_id_of(paid), posted, "k", holders)
    dispatch_fulfilment(fulfilment_id_of(free_kit), posted, "k", holders)
    services.cancel_order(cancelled, "FA/1001", "SW1A 2AA", holders, "198.51.100.7")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "statement.csv"
    period = ["--from", today.isoformat(), "--to", (today + timedelta(days=1)).isoformat()]
    ran = CliRunner().invoke(cli, ["finance", "statement", *period, "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(out.read_text(), newline="")))
    blank = rows.index([])
    kits = {row[0]: row[1] for row in rows[1:blank]}
    assert kits == {
        fulfilment_id_of(paid): "paid",
        fulfilment_id_of(free_kit): "free_register_flag",
        fulfilment_id_of(cancelled): "cancelled_after_release",
    }
    summary = {row[0]: (int(row[1]), int(row[2])) for row in rows[blank + 2 :]}
    assert summary["paid"] == (1, 895) and summary["free_area"] == (0, 0)
    assert summary["total"] == (3, 2685)  # 3 kits at 895p, worked by hand
    out_xlsx = tmp_path / "statement.xlsx"
    ran = CliRunner().invoke(cli, ["finance", "statement", *period, "--format", "xlsx", "--out", str(out_xlsx)])
    assert ran.exit_code == 0, ran.output
    assert stat.S_IMODE(out_xlsx.stat().st_mode) == 0o600
    from openpyxl import load_workbook

    totals = {row[0].value: row[1].value for row in load_workbook(out_xlsx)["Totals"].iter_rows(min_row=2)}
    assert totals["total"] == 3 and totals["paid"] == 1
    token = create_api_key(Scope.FINANCE, "Finance", holders.api_keys, holders.clock())[1]
    query = f"/finance/kit-maker-statement?from={today}&to={today + timedelta(days=1)}"
    answer = finance_get(client, token, query + "&format=json")
    assert answer.status_code == 200
    document = json.loads(answer.body)
    assert (document["total_kits"], document["total_pence"]) == (3, 2685)
    assert {k["fulfilment_id"]: k["kind"] for k in document["kits"]} == kits
    as_csv = finance_get(client, token, query)
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_csv.body.decode("utf-8-sig").replace("\r\n", "\n") == out.read_text(encoding="utf-8-sig").replace(
        "\r\n", "\n"
    )
    as_xlsx = client.http.get(
        query + "&format=xlsx",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert as_xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(as_xlsx.body))["Totals"]
    assert {row[0].value: row[2].value for row in sheet.iter_rows(min_row=2)}["total"] == 2685
    for bad in (
        "?from=2026-12-01&to=2026-11-01",
        "?from=x&to=y",
        f"?from={today}&to={today + timedelta(days=1)}&format=pdf",
    ):
        refused = finance_get(client, token, "/finance/kit-maker-statement" + bad)
        assert refused.status_code == 400, refused.body
    manufacturer = create_api_key(Scope.MANUFACTURER, "Kit Maker", holders.api_keys, holders.clock())[1]
    assert finance_get(client, manufacturer, query).status_code == 403
