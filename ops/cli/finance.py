"""Finance: the reconciliation of orders against Stripe, to a file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ops.cli.common import dependencies, echo
from ops.private_files import private_file


@click.group()
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
    deps = dependencies(uses_stripe=True)
    try:
        with (
            private_file(out, "wb") as stream,
            tqdm(unit="row", disable=quiet, file=sys.stderr, desc="Reconciling") as bar,
        ):
            result = export_to(stream, fmt, period, deps, on_row=lambda: bar.update(1))
    except PaymentServiceUnavailable:
        raise click.ClickException("Stripe could not be reached; nothing was written. Try again.") from None
    except FileExistsError:
        raise click.ClickException(
            f"{out}.part exists: another export is writing it, or one was interrupted (remove it and try again)"
        ) from None
    echo(f"{out}: {result.rows} rows, {result.findings} discrepancies")


@finance.command("statement")
@click.option("--from", "start", required=True, help="First day, UTC, inclusive (2026-11-01).")
@click.option("--to", "end", required=True, help="Last day, UTC, exclusive (2026-12-01).")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
def finance_statement(start: str, end: str, fmt: str, out: Path) -> None:
    """The kit maker's statement: every kit dispatched (by kind) or cancelled after release in the
    period, at the negotiated unit price (KIT_MAKER_UNIT_PRICE_PENCE), as CSV or XLSX. No personal data."""
    from chalicelib.domain.errors import InvalidInput
    from chalicelib.services.finance import parse_period, statement_to

    try:
        period = parse_period(start, end)
    except InvalidInput as exc:
        raise click.ClickException("; ".join(exc.errors.values())) from None
    deps = dependencies()
    try:
        with private_file(out, "wb") as stream:
            result = statement_to(stream, fmt, period, deps)
    except FileExistsError:
        raise click.ClickException(
            f"{out}.part exists: another statement is writing it (remove it and try again)"
        ) from None
    echo(f"{out}: {len(result.lines)} kits, {result.total_pence} pence owed")
