"""One command line for all of tracekit's operator tasks.

Configuration comes from the same environment variables the app reads (see README); secrets
are never taken as arguments, so they stay out of shell history.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from chalicelib.domain.register import REGISTER_COLUMNS, RegisterKeys
from chalicelib.settings import OperatorSettings, SettingsError

MAX_REPORTED = 50


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """tracekit: operator tasks for the property-marking kit campaign."""


@main.group()
def register() -> None:
    """The register of certificate holders."""


@register.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_register_command(csv_file: Path, quiet: bool) -> None:
    """Import the licensing system's CSV export into the register.

    Columns: certificate_reference, certificate_type (firearm, shotgun, both), status (in force,
    expired, revoked, surrendered, cancelled), expiry_date (2027-03-31 or 31/03/2027), postcode,
    free_kit (yes/no, may be empty). References and postcodes are stored only as keyed hashes.
    Bad rows are reported by line number and skipped; importing the same file again changes nothing.
    """
    from chalicelib import bootstrap
    from chalicelib.services import import_register

    settings = _operator_settings()
    total = _count_rows(csv_file)
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_columns(reader.fieldnames)
        with _progress(total, quiet) as bar:
            report = import_register(
                _numbered(reader),
                bootstrap.register_for(settings),
                RegisterKeys(settings.register_key),
                settings.reference_rules,
                on_row=lambda: bar.update(1),
            )
    _print_report(report)
    if report.rejected:
        sys.exit(1)


def _operator_settings() -> OperatorSettings:
    from chalicelib import bootstrap
    from chalicelib.secrets import SecretsUnavailable

    try:
        return bootstrap.operator_settings_from_environment()
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def _check_columns(fieldnames) -> None:
    missing = [c for c in REGISTER_COLUMNS if c not in (fieldnames or [])]
    if missing:
        raise click.ClickException("the file lacks the columns: " + ", ".join(missing))


def _numbered(reader: csv.DictReader):
    """(line number, row); line_num counts physical lines, so quoted newlines are reported right."""
    for row in reader:
        yield reader.line_num, {k: v for k, v in row.items() if k is not None}


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="row", disable=quiet, file=sys.stderr, desc="Importing")


def _print_report(report) -> None:
    click.echo(
        f"{report.written} rows written, {len(report.rejected)} rejected, {report.removed} removed "
        "(no longer in the export)"
    )
    if report.kept_stale:
        click.echo(
            "  entries missing from this export were kept, because rows were rejected: fix them and "
            "import again to remove them",
            err=True,
        )
    for line, reason in report.rejected[:MAX_REPORTED]:
        click.echo(f"  line {line}: {reason}", err=True)
    if len(report.rejected) > MAX_REPORTED:
        click.echo(f"  … and {len(report.rejected) - MAX_REPORTED} more", err=True)


def _dependencies():
    """The app's own composition root, for commands that act on orders and payments."""
    from chalicelib import bootstrap

    from chalicelib.secrets import SecretsUnavailable

    try:
        return bootstrap.build(bootstrap.settings_from_environment())
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@main.command()
@click.argument("order_reference")
@click.option("--amount", type=click.IntRange(min=1), help="Pence to refund; the whole remainder if left out.")
@click.option("--reason", required=True, help="Why, for the order's log (kept in tracekit, not sent to Stripe).")
@click.option("--operator", envvar="USER", required=True, help="Who is refunding (defaults to $USER).")
def refund(order_reference: str, amount: int | None, reason: str, operator: str) -> None:
    """Refund an order through Stripe, in part (--amount) or in full.

    Running the same command again does nothing more: it is recognised from the order's log.
    A full refund before dispatch cancels the kit; after dispatch it does not."""
    from chalicelib.domain.errors import OrderNotFound, PaymentServiceUnavailable, RefundRefused
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services import refund_order

    reference = normalise_order_reference(order_reference)
    if reference is None:
        raise click.ClickException(f"{order_reference!r} is not an order reference (like TK-7K3MQ-9X2HD)")
    try:
        order = refund_order(reference, amount, reason, operator, _dependencies())
    except (OrderNotFound, RefundRefused, PaymentServiceUnavailable) as exc:
        raise click.ClickException(_say(exc)) from None
    click.echo(
        f"{order.reference}: payment {order.payment.value}, refunded {order.refunded_pence} pence, "
        f"fulfilment {order.fulfilment.value}"
    )


@main.group()
def order() -> None:
    """Orders: state and history (no personal data is shown)."""


@order.command("show")
@click.argument("order_reference")
def show_order(order_reference: str) -> None:
    """An order's three states and its append-only log, for support and finance."""
    from chalicelib.domain.errors import OrderNotFound
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services import find_order
    from chalicelib.timeutil import to_iso

    reference = normalise_order_reference(order_reference) or order_reference
    try:
        found = find_order(reference, _dependencies())
    except OrderNotFound:
        raise click.ClickException(f"no order {reference}") from None
    click.echo(
        f"{found.reference}  created {to_iso(found.created_at)}  amount {found.amount.pence} {found.amount.currency}"
    )
    click.echo(
        f"order {found.state.value}  payment {found.payment.value}  fulfilment {found.fulfilment.value}"
        f"  refunded {found.refunded_pence}" + (f"  flag {found.payment_flag}" if found.payment_flag else "")
    )
    for entry in found.history:
        event = f"  [{entry.stripe_event_id}]" if entry.stripe_event_id else ""
        click.echo(f"  {to_iso(entry.at)}  {entry.actor:<18} {entry.change}{event}")


def _say(exc: Exception) -> str:
    from chalicelib.domain.errors import OrderNotFound, PaymentServiceUnavailable

    if isinstance(exc, OrderNotFound):
        return f"no order {exc}"
    if isinstance(exc, PaymentServiceUnavailable):
        return "Stripe could not be reached; nothing was refunded. Try again."
    return str(exc)


@main.group()
def keys() -> None:
    """API keys for the manufacturer and finance (shown once, stored only as hashes)."""


def _key_store():
    from chalicelib import bootstrap
    from chalicelib.settings import KeyStoreSettings

    try:
        settings = KeyStoreSettings.from_environ()
    except SettingsError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    return bootstrap.key_store(settings.api_keys_table, settings.region, settings.aws_endpoint_url)


@keys.command("create")
@click.option("--scope", type=click.Choice(["manufacturer", "finance"]), required=True)
@click.option("--label", required=True, help="Whose key this is, e.g. the company's name.")
def create_key(scope: str, label: str) -> None:
    """Create a key. The token is printed once: hand it over securely; it cannot be shown again."""
    from chalicelib.domain.credentials import Scope
    from chalicelib.services.credentials import create_api_key
    from chalicelib.timeutil import utc_now

    key, token = create_api_key(Scope(scope), label, _key_store(), utc_now())
    click.echo(f"key id {key.key_id} ({key.scope.value}, {key.label})", err=True)
    click.echo(token)


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key at once (API Gateway may serve a cached decision for up to a minute)."""
    from chalicelib.services.credentials import revoke_api_key
    from chalicelib.timeutil import utc_now

    key = revoke_api_key(key_id, _key_store(), utc_now())
    if key is None:
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"key {key.key_id} ({key.scope.value}, {key.label}) revoked")


@keys.command("list")
def list_keys() -> None:
    """Every key: id, scope, label, created, revoked. Never the secret (it is not stored)."""
    from chalicelib.timeutil import to_iso

    for key in _key_store().all():
        revoked = f"revoked {to_iso(key.revoked_at)}" if key.revoked_at else "active"
        click.echo(f"{key.key_id}  {key.scope.value:<12} {to_iso(key.created_at)}  {revoked:<30} {key.label}")


@main.group()
def fulfilment() -> None:
    """The manufacturer's side, seen from tracekit."""


@fulfilment.command("stuck")
@click.option("--days", type=click.IntRange(min=1), help="Overrides STUCK_AFTER_DAYS.")
def stuck(days: int | None) -> None:
    """Orders released but not dispatched after the configured days, and the dead-letter depth.
    Exit status 1 when there is anything to chase."""
    from dataclasses import replace

    from chalicelib.services.manufacturer import fulfilment_health

    deps = _dependencies()
    if days is not None:
        deps.settings = replace(deps.settings, stuck_after_days=days)
    health = fulfilment_health(deps, publish=False)
    click.echo(
        f"{len(health.stuck)} released but not dispatched after {deps.settings.stuck_after_days} days; "
        f"{health.dead_letters} message(s) in the dead-letter queue"
    )
    for fulfilment_id in health.stuck:
        click.echo(f"  {fulfilment_id}")
    if health.stuck or health.dead_letters:
        sys.exit(1)


@fulfilment.command("relay")
def relay() -> None:
    """Send confirmed orders whose fulfilment message did not go (what the scheduled relay does)."""
    from chalicelib.services.manufacturer import relay_unsent

    click.echo(f"{relay_unsent(_dependencies())} message(s) sent")


@main.command()
@click.argument("order_reference")
@click.option("--reason", required=True, help="Why (kept in the order's log; no personal data, please).")
@click.option("--operator", envvar="USER", required=True, help="Who is erasing (defaults to $USER).")
def erase(order_reference: str, reason: str, operator: str) -> None:
    """Erase the recipient's name, address and email from an order, keeping the financial record
    (reference, amounts, states and log) that finance needs. Running it again changes nothing."""
    from chalicelib.domain.errors import OrderNotFound
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services.privacy import erase_order

    reference = normalise_order_reference(order_reference)
    if reference is None:
        raise click.ClickException(f"{order_reference!r} is not an order reference (like TK-7K3MQ-9X2HD)")
    try:
        order = erase_order(reference, reason, operator, _dependencies())
    except OrderNotFound:
        raise click.ClickException(f"no order {reference}") from None
    click.echo(f"{order.reference}: personal data erased; payment {order.payment.value}, {order.amount.pence} pence")


@main.group()
def contacts() -> None:
    """Holders who ticked to let the Firearms Enquiry Team email them."""


@contacts.command("export")
@click.argument("output", type=click.Path(dir_okay=False, writable=True))
def export_contacts(output: str) -> None:
    """Write the team's list to OUTPUT (CSV: email, consented_on). Nothing else about the holders
    is in it. Run it before the retention purge erases the emails of dispatched orders."""
    from chalicelib.reports import neutralise
    from chalicelib.services.privacy import contact_list

    entries = contact_list(_dependencies())
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "consented_on"])
        writer.writerows([neutralise(email), day.isoformat()] for email, day in entries)
    click.echo(f"{len(entries)} contact(s) written to {output}", err=True)


def _register_manufacturer_client() -> None:
    from ops.manufacturer_client import manufacturer

    main.add_command(manufacturer)


_register_manufacturer_client()


@main.group()
def finance() -> None:
    """Finance: reconciliation of orders against Stripe."""


@finance.command("export")
@click.option("--from", "start", required=True, help="First day, UTC, inclusive (2026-11-01).")
@click.option("--to", "end", required=True, help="Last day, UTC, exclusive (2026-12-01).")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finance_export(start: str, end: str, fmt: str, out: Path, quiet: bool) -> None:
    """Every order and Stripe balance transaction of the period, the discrepancies in labelled
    sections, and a summary. No names, addresses, emails or certificate data."""
    from tqdm import tqdm

    from chalicelib.domain.errors import InvalidInput, PaymentServiceUnavailable
    from chalicelib.services.finance import export_to, parse_period

    try:
        period = parse_period(start, end)
    except InvalidInput as exc:
        raise click.ClickException("; ".join(exc.errors.values())) from None
    deps = _dependencies()
    partial = out.with_name(out.name + ".part")
    try:
        with partial.open("wb") as stream, tqdm(unit="row", disable=quiet, file=sys.stderr, desc="Reconciling") as bar:
            result = export_to(stream, fmt, period, deps, on_row=lambda: bar.update(1))
    except PaymentServiceUnavailable:
        partial.unlink(missing_ok=True)
        raise click.ClickException("Stripe could not be reached; nothing was written. Try again.") from None
    partial.replace(out)  # a half-written file never carries the final name
    click.echo(f"{out}: {result.rows} rows, {result.findings} discrepancies")
