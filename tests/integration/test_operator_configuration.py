"""The operator CLI's configuration: each command needs only the settings it uses, and unset ones are
filled from an env file (what `make run` writes), the environment winning. Against moto."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from click.testing import CliRunner

from chalicelib import services
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.references import new_order_reference
from ops.cli import main
from ops.cli.common import fill_environment_from_file, read_environment_file
from tests.builders import delivery_form, load_register, register_row

SECRETS = ("REGISTER_KEY", "JOURNEY_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")


@pytest.fixture
def given():
    """Run the CLI with exactly these variables of the app's (and AWS's dummy credentials): the
    process environment is put back afterwards, whatever the command filled in."""
    saved = dict(os.environ)

    def run(settings: dict[str, str], *args: str):
        os.environ.clear()
        os.environ.update({name: saved[name] for name in ("PATH", "HOME") if name in saved})
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        os.environ.update(settings)
        os.environ.setdefault("TRACEKIT_ENV_FILE", saved["TRACEKIT_ENV_FILE"])
        return CliRunner().invoke(main, list(args))

    yield run
    os.environ.clear()
    os.environ.update(saved)


def without(environment: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name not in names}


def a_free_order(deps) -> str:
    load_register(deps, register_row("FA/7000", "SW1A 2AA", free_kit="yes"))
    checked = services.check_certificate("FA/7000", "SW1A 2AA", deps)
    placed = services.confirm_order(checked, parse_delivery_details(delivery_form()), new_order_reference(), deps)
    return placed.reference


def test_keys_need_only_the_key_table(given, environment):
    only = {name: environment[name] for name in ("API_KEYS_TABLE", "AWS_ENDPOINT_URL", "AWS_REGION")}
    created = given(only, "keys", "create", "--scope", "finance", "--label", "Finance Team")
    assert created.exit_code == 0, created.output
    listed = given(only, "keys", "list")
    assert listed.exit_code == 0 and "Finance Team" in listed.output


def test_order_show_and_the_lists_need_no_secret(given, environment, deps, tmp_path):
    reference = a_free_order(deps)
    no_secrets = without(environment, *SECRETS)
    shown = given(no_secrets, "order", "show", reference)
    assert shown.exit_code == 0, shown.output
    assert "fulfilment released" in shown.output and "Ada Example" not in shown.output
    for command in (["support", "list"], ["support", "show", reference], ["fulfilment", "stuck"]):
        result = given(no_secrets, *command)
        assert result.exit_code in (0, 1) and "configuration" not in result.output, (command, result.output)
    contacts = given(no_secrets, "contacts", "export", str(tmp_path / "contacts.csv"))
    assert contacts.exit_code == 0, contacts.output
    day, next_day = deps.clock().date(), deps.clock().date() + timedelta(days=1)
    period = ["--from", day.isoformat(), "--to", next_day.isoformat()]
    statement = given(no_secrets, "finance", "statement", *period, "--out", str(tmp_path / "s.csv"))
    assert statement.exit_code == 0, statement.output


def test_the_registers_status_needs_no_key_but_an_import_does(given, environment, tmp_path):
    names = ("REGISTER_TABLE", "CLAIMS_TABLE", "CONTACTS_TABLE", "AWS_ENDPOINT_URL", "AWS_REGION")
    only = {name: environment[name] for name in names}
    status = given(only, "register", "status")
    assert status.exit_code == 0 and "configuration" not in status.output, status.output
    export = tmp_path / "export.csv"
    export.write_text("certificate_reference,certificate_type,status,expiry_date,postcode,free_kit\n")
    refused = given(only, "register", "import", "--yes", str(export))
    assert refused.exit_code == 1 and "configuration: REGISTER_KEY must be set" in refused.output


def test_finance_export_needs_stripes_key_but_not_the_apps_own_secrets(given, environment, deps, tmp_path):
    a_free_order(deps)
    settings = without(environment, "REGISTER_KEY", "JOURNEY_KEY", "STRIPE_WEBHOOK_SECRET")
    day, next_day = deps.clock().date(), deps.clock().date() + timedelta(days=1)
    export = ["finance", "export", "--from", day.isoformat(), "--to", next_day.isoformat(), "--quiet"]
    written = given(settings, *export, "--out", str(tmp_path / "r.csv"))
    assert written.exit_code == 0, written.output
    assert "1 rows" in written.output
    refused = given(without(settings, "STRIPE_SECRET_KEY"), *export, "--out", str(tmp_path / "r2.csv"))
    assert refused.exit_code == 1 and "configuration: STRIPE_SECRET_KEY must be set" in refused.output
    assert not (tmp_path / "r2.csv").exists()


def test_a_refund_without_stripes_key_is_refused_before_anything_changes(given, environment, deps):
    reference = a_free_order(deps)
    before = deps.orders.get(reference).history
    refused = given(without(environment, "STRIPE_SECRET_KEY"), "refund", reference, "--reason", "x", "--operator", "a")
    assert refused.exit_code == 1 and "configuration: STRIPE_SECRET_KEY must be set" in refused.output
    assert "Traceback" not in refused.output and deps.orders.get(reference).history == before


def test_the_env_file_fills_what_the_environment_leaves_unset_and_the_environment_wins(given, environment, tmp_path):
    env_file = tmp_path / "stack.env"
    written = {**environment, "API_KEYS_TABLE": "no-such-table"}
    env_file.write_text("# a comment\n\n" + "".join(f"{name}={value}\n" for name, value in written.items()))
    from_file = given({"TRACEKIT_ENV_FILE": str(env_file)}, "keys", "list")
    assert from_file.exit_code != 0  # the file's (wrong) table was used
    overridden = given(
        {"TRACEKIT_ENV_FILE": str(env_file), "API_KEYS_TABLE": environment["API_KEYS_TABLE"]},
        "keys",
        "create",
        "--scope",
        "manufacturer",
        "--label",
        "Kit Maker Ltd",
    )
    assert overridden.exit_code == 0, overridden.output


def test_an_env_file_line_that_is_not_key_value_is_refused_without_showing_it(given, tmp_path):
    env_file = tmp_path / "broken.env"
    env_file.write_text("API_KEYS_TABLE=keys\nexport REGISTER_KEY=sekrit-value\n")
    result = given({"TRACEKIT_ENV_FILE": str(env_file)}, "keys", "list")
    assert result.exit_code == 1 and f"{env_file} line 2 is not KEY=value" in result.output
    assert "sekrit" not in result.output
    missing = given({"TRACEKIT_ENV_FILE": str(tmp_path / "absent.env")}, "keys", "list")
    assert missing.exit_code == 1 and "which is not a file" in missing.output


def test_values_are_taken_literally_and_a_set_variable_is_kept(tmp_path):
    env_file = tmp_path / "literal.env"
    env_file.write_text("A=$HOME x\nB='quoted'\nC=from-file\nD=a=b\n")
    assert read_environment_file(env_file) == {"A": "$HOME x", "B": "'quoted'", "C": "from-file", "D": "a=b"}
    environ = {"TRACEKIT_ENV_FILE": str(env_file), "C": ""}
    assert fill_environment_from_file(environ) == env_file
    assert environ["C"] == "" and environ["A"] == "$HOME x"


def test_payments_built_without_a_webhook_secret_verify_no_webhook(deps):
    """An operator's command may build the adapter with no STRIPE_WEBHOOK_SECRET: a body signed
    with the empty key must still be refused, never taken as Stripe's (stripe-python 16's
    verify_header refuses an empty secret itself)."""
    import hashlib
    import hmac

    from chalicelib.adapters.stripe_payments import StripePayments, stripe_client
    from chalicelib.domain.errors import InvalidWebhook

    payments = StripePayments(stripe_client("sk_test_unused", None), "", deps.clock)
    body = b'{"id": "evt_forged", "type": "checkout.session.completed", "data": {"object": {}}}'
    stamp = int(deps.clock().timestamp())
    signature = hmac.new(b"", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidWebhook):
        payments.parse_webhook(body, f"t={stamp},v1={signature}")
