"""Operator commands for keys and the fulfilment watch, through the CLI against moto."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from chalicelib import services
from chalicelib.services import manufacturer
from chalicelib.domain.credentials import read_token
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.references import new_order_reference
from ops.cli import main
from tests.builders import delivery_form, load_register, register_row


@pytest.fixture
def operator(environment, monkeypatch):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_a_key_is_created_shown_once_listed_without_its_secret_and_revoked(operator, deps):
    created = operator.invoke(main, ["keys", "create", "--scope", "manufacturer", "--label", "Kit Maker Ltd"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    scope, key_id, secret = read_token(f"Bearer {token}")
    assert scope == "manufacturer" and manufacturer.authorize(f"Bearer {token}", deps).key_id == key_id
    listed = operator.invoke(main, ["keys", "list"])
    assert key_id in listed.output and "Kit Maker Ltd" in listed.output and secret not in listed.output
    assert operator.invoke(main, ["keys", "revoke", key_id]).exit_code == 0
    assert manufacturer.authorize(f"Bearer {token}", deps) is None
    assert "revoked" in operator.invoke(main, ["keys", "list"]).output
    assert operator.invoke(main, ["keys", "revoke", "0000000000000000"]).exit_code != 0


def test_stuck_fulfilments_are_listed_with_a_failing_exit_status(operator, deps):
    load_register(deps, register_row("FA/2000", "SW1A 2AA", free_kit="yes"))
    three_days_ago = datetime.now(timezone.utc) - timedelta(days=3)
    deps.clock.set(three_days_ago)
    checked = services.check_certificate("FA/2000", "SW1A 2AA", deps)
    placed = services.confirm_order(checked, parse_delivery_details(delivery_form()), new_order_reference(), deps)
    clean = operator.invoke(main, ["fulfilment", "stuck"])
    assert clean.exit_code == 0 and "0 released but not dispatched" in clean.output
    # Released three days ago: not stuck by the default five days, stuck by one.
    stuck = operator.invoke(main, ["fulfilment", "stuck", "--days", "1"])
    fulfilment_id = "F-" + placed.reference.removeprefix("TK-")
    assert stuck.exit_code == 1 and fulfilment_id in stuck.output
    assert re.search(r"1 released but not dispatched after 1 days", stuck.output)


def test_the_contact_list_holds_only_confirmed_addresses_not_withdrawn(operator, deps, tmp_path):
    from chalicelib.domain.times import to_iso
    from chalicelib.services import contacts
    from tests.unit.test_contacts import confirm_token, withdraw_token

    load_register(deps, *[register_row(f"FA/{5000 + n}", "SW1A 2AA", free_kit="yes") for n in range(4)])
    answers = [
        delivery_form(email="sam@example.com", contact_consent="yes", full_name="Sam Confirmed"),
        delivery_form(email="jo@example.com", full_name="Jo Unticked"),
        delivery_form(email="al@example.com", contact_consent="yes", full_name="Al Unconfirmed"),
        delivery_form(email="bo@example.com", contact_consent="yes", full_name="Bo Withdrawn"),
    ]
    for number, form in enumerate(answers):
        checked = services.check_certificate(f"FA/{5000 + number}", "SW1A 2AA", deps)
        services.confirm_order(checked, parse_delivery_details(form), new_order_reference(), deps)
    consented = deps.clock()
    deps.clock.set(consented + timedelta(hours=2))
    for email in ("sam@example.com", "bo@example.com"):
        contacts.confirm_registration(confirm_token(deps, email), deps)
    contacts.withdraw(withdraw_token(deps, "bo@example.com"), deps)
    output = tmp_path / "contacts.csv"
    result = operator.invoke(main, ["contacts", "export", str(output)])
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    row = f"sam@example.com,{to_iso(consented)},{to_iso(consented + timedelta(hours=2))}"
    assert text.splitlines() == ["email,consented_at,confirmed_at", row]
    assert "Sam Confirmed" not in text and "SW1A" not in text and "FA/" not in text
    assert output.stat().st_mode & 0o777 == 0o600  # emails: for the team's eyes only
    assert not output.with_name("contacts.csv.part").exists()


def test_support_lists_rejected_and_stuck_orders_shows_one_and_resends_its_email(operator, deps):
    from chalicelib.domain.changes import Source
    from chalicelib.domain.lifecycle import reject

    load_register(deps, *[register_row(f"FA/{2100 + n}", "SW1A 2AA", free_kit="yes") for n in range(3)])
    six_days_ago = datetime.now(timezone.utc) - timedelta(days=6)
    deps.clock.set(six_days_ago)
    placed = []
    for number, email in enumerate(["sam@example.com", "", "jo@example.com"]):
        checked = services.check_certificate(f"FA/{2100 + number}", "SW1A 2AA", deps)
        form = delivery_form(email=email, full_name=f"Holder Number{number}")
        placed.append(services.confirm_order(checked, parse_delivery_details(form), new_order_reference(), deps))
    rejected, no_email, stuck = (p.reference for p in placed)
    deps.clock.set(six_days_ago + timedelta(hours=1))
    why = "address not found\x1b[31m"
    for reference in (rejected, no_email):
        services.apply_change(reference, lambda o: reject(o, why, Source("manufacturer"), deps.clock()), deps)

    listed = operator.invoke(main, ["support", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "3 order(s) need a person"
    # oldest first: the stuck one since its release, the rejected ones an hour later
    assert [line.split()[0] for line in lines[1:]] == [stuck, *sorted([rejected, no_email])]
    assert "not dispatched after 5 days" in lines[1] and "rejected" in lines[2] and "rejected" in lines[3]
    assert "Holder" not in listed.output and "SW1A" not in listed.output and "example.com" not in listed.output

    shown_plain = operator.invoke(main, ["support", "show", rejected])
    assert shown_plain.exit_code == 0, shown_plain.output
    assert "fulfilment id F-" + rejected.removeprefix("TK-") in shown_plain.output
    assert "rejection reason: address not found\\x1b[31m" in shown_plain.output and "\x1b" not in shown_plain.output
    assert "Holder Number0" not in shown_plain.output and "sam@example.com" not in shown_plain.output
    with_address = operator.invoke(main, ["support", "show", rejected, "--with-address"])
    assert "Holder Number0" in with_address.output and "email: sam@example.com" in with_address.output

    resend = ["support", "resend", rejected, "confirmation", "--operator", "alex", "--reason", "holder lost it"]
    first, second = operator.invoke(main, resend), operator.invoke(main, resend)
    assert first.exit_code == 0 and "confirmation email resent" in first.output, first.output
    assert second.exit_code == 0 and "nothing more sent" in second.output, second.output
    log = [(e.actor, e.change) for e in deps.orders.get(rejected).history]
    assert log.count(("operator:alex", "confirmation email resent: holder lost it")) == 1

    refused = operator.invoke(main, ["support", "resend", no_email, "confirmation", "--reason", "x", "--operator", "a"])
    assert refused.exit_code == 1 and "has no email address" in refused.output
    early = operator.invoke(main, ["support", "resend", stuck, "dispatch", "--reason", "x", "--operator", "a"])
    assert early.exit_code == 1 and "has not been dispatched" in early.output
    unknown = operator.invoke(main, ["support", "show", "TK-AAAAA-AAAAA"])
    assert unknown.exit_code == 1 and "no order" in unknown.output
