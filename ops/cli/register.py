"""The register of certificate holders: importing the licensing system's export."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from chalicelib.domain.register import REGISTER_COLUMNS, RegisterKeys
from ops.cli.common import operator_settings

MAX_REPORTED = 50


@click.group()
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

    settings = operator_settings()
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
