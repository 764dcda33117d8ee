"""The register of certificate holders: importing the licensing system's export, all or nothing,
and rolling an import back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chalicelib.domain.errors import ExportChanged, NothingToRollBack, RegisterChanged
from chalicelib.domain.register import RegisterKeys, RegisterState
from chalicelib.settings import required_secret
from ops.cli.common import configuration_errors, operator_settings

MAX_REPORTED = 50  # problems printed; the rest are counted


@click.group()
def register() -> None:
    """The register of certificate holders."""


@register.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and show what it would change; change nothing.")
@click.option("--yes", is_flag=True, help="Switch without asking (for scripts).")
@click.option(
    "--allow-shrink", is_flag=True, help="Switch even if the file removes more than REGISTER_MAX_REMOVAL_PERCENT."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def import_register_command(csv_file: Path, dry_run: bool, yes: bool, allow_shrink: bool, quiet: bool) -> None:
    """Replace the register with the licensing system's CSV export, all or nothing.

    Columns: certificate_reference, certificate_type (firearm, shotgun, both), status (in force,
    expired, revoked, surrendered, cancelled), expiry_date (2027-03-31 or 31/03/2027), postcode,
    free_kit (yes/no, may be empty); UTF-8, with or without a BOM. References and postcodes are
    stored only as keyed hashes.

    The whole file is checked first: if any line is wrong, each is reported by line number and
    nothing changes. Then it is compared with the live register; a file with no rows, or one that
    would remove more than REGISTER_MAX_REMOVAL_PERCENT of it (unless --allow-shrink), is refused.
    The file is written as a new generation of the register, which one write makes live; the one
    it replaces is kept, for `register rollback`. Importing the same file again changes nothing.
    """
    from chalicelib import bootstrap
    from chalicelib.services import RegisterImport

    settings = operator_settings()
    with configuration_errors():
        keys = RegisterKeys(required_secret(settings.register_key, "REGISTER_KEY"))
    with RegisterImport(
        _opener(csv_file, quiet),
        bootstrap.register_for(settings),
        keys,
        settings.reference_rules,
    ) as job:
        check = job.check()
        _print_check(check)
        if not check.passed:
            sys.exit(1)
        plan = job.plan(settings.register_max_removal_percent, allow_shrink)
        _print_plan(plan)
        if plan.refusal:
            raise click.ClickException(f"refused, nothing changed: {plan.refusal}")
        if plan.change.is_nothing:
            click.echo("The register already says what this file says: nothing to change.")
            return
        if dry_run:
            click.echo("Dry run: nothing changed.")
            return
        _confirm_or_stop(yes, "Switch the register to this file?")
        _carry_out(job, plan)


def _carry_out(job, plan) -> None:
    from chalicelib.timeutil import utc_now

    try:
        outcome = job.carry_out(plan, utc_now())
    except ExportChanged:
        raise click.ClickException(
            "the file changed while it was being imported: nothing switched; import it again"
        ) from None
    except RegisterChanged:
        raise click.ClickException(
            "the register changed while this import ran (another import, a rollback or a prune): nothing switched; "
            "import again"
        ) from None
    state = outcome.state
    click.echo(f"Switched: generation {state.live} is live, {state.live_entries:,} entries.")
    _remove_departed_contacts()
    if state.previous is not None:
        click.echo(f"Generation {state.previous} is kept: `ops register rollback` makes it live again.")
    for generation, deleted in outcome.deleted.items():
        click.echo(f"Deleted generation {generation} ({deleted:,} entries).")


def _remove_departed_contacts() -> None:
    from chalicelib import bootstrap
    from chalicelib.services.contacts import remove_departed_contacts

    settings = operator_settings()
    removed = remove_departed_contacts(bootstrap.register_for(settings), bootstrap.contacts_for(settings))
    click.echo(f"Removed the contact register's entries of {removed:,} certificate(s) no longer in force.")


@register.command("rollback")
@click.option("--yes", is_flag=True, help="Roll back without asking (for scripts).")
def rollback_command(yes: bool) -> None:
    """Make the previous generation of the register live again, in one write. Running it again
    undoes it (the two swap places); the next import replaces whichever is not live."""
    from chalicelib import bootstrap
    from chalicelib.services import roll_back_register
    from chalicelib.timeutil import utc_now

    register_store = bootstrap.register_for(operator_settings())
    state = register_store.state()
    _print_state(state)
    if state.previous is None:
        raise click.ClickException("there is no previous generation to roll back to")
    _confirm_or_stop(yes, f"Make generation {state.previous} live again?")
    try:
        after = roll_back_register(register_store, utc_now())
    except (RegisterChanged, NothingToRollBack):
        raise click.ClickException("the register changed meanwhile: nothing rolled back; look again") from None
    click.echo(f"Rolled back: generation {after.live} is live, {after.live_entries:,} entries.")


@register.command("status")
def status_command() -> None:
    """Which generation of the register is live, and which a rollback would restore."""
    from chalicelib import bootstrap

    _print_state(bootstrap.register_for(operator_settings()).state())


@register.command("prune")
def prune_command() -> None:
    """Delete what a crashed or abandoned import left behind (each import does this too, after
    it switches). The live and previous generations are never touched; an import still writing is
    stopped from switching. Running it again changes nothing."""
    from chalicelib import bootstrap
    from chalicelib.services import prune_register

    deleted = prune_register(bootstrap.register_for(operator_settings()))
    for generation, entries in deleted.items():
        if entries:
            click.echo(f"Deleted generation {generation} ({entries:,} entries).")
    click.echo(f"{sum(deleted.values()):,} entries deleted.")


def _opener(path: Path, quiet: bool):
    """Opens the file for one reading, with a progress bar over its bytes."""
    from tqdm import tqdm

    readings = iter(("Checking", "Writing"))

    class Reading:
        def __enter__(self):
            self._handle = path.open("rb")
            self._bar = tqdm(
                total=path.stat().st_size,
                unit="B",
                unit_scale=True,
                disable=quiet,
                file=sys.stderr,
                desc=next(readings, "Reading"),
            )
            return self

        def readline(self, limit: int = -1) -> bytes:
            line = self._handle.readline(limit)
            self._bar.update(len(line))
            return line

        def __exit__(self, *exc) -> None:
            self._bar.close()
            self._handle.close()

    return Reading


def _confirm_or_stop(yes: bool, question: str) -> None:
    if yes:
        return
    if not _on_a_terminal():
        raise click.ClickException("not on a terminal, so not asking: pass --yes to go ahead (or --dry-run to look)")
    if not click.confirm(question, default=False):
        raise click.ClickException("stopped: nothing changed")


def _on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _print_check(check) -> None:
    if check.ignored_columns:
        click.echo("Columns ignored (not the register's): " + ", ".join(check.ignored_columns))
    if check.repeat_count:
        shown = ", ".join(f"line {line} (= line {first})" for line, first in check.repeats[:10])
        more = f" and {check.repeat_count - 10:,} more" if check.repeat_count > 10 else ""
        rows = "row repeats" if check.repeat_count == 1 else "rows repeat"
        click.echo(f"{check.repeat_count:,} {rows} an earlier row exactly, and are imported once: {shown}{more}")
    if check.passed:
        click.echo(f"Checked: {check.rows:,} rows, no problems.")
        return
    problems = "problem" if check.problem_count == 1 else "problems"
    click.echo(f"Refused, nothing changed: {check.problem_count:,} {problems} in the file.", err=True)
    for problem in check.problems[:MAX_REPORTED]:
        where = f"line {problem.line}: " if problem.line is not None else ""
        click.echo(f"  {where}{problem.reason}", err=True)
    if check.problem_count > MAX_REPORTED:
        click.echo(f"  … and {check.problem_count - MAX_REPORTED:,} more", err=True)


def _print_plan(plan) -> None:
    change = plan.change
    click.echo(
        f"Against the live register ({change.live_entries:,} entries): {change.added:,} to add, "
        f"{change.removed:,} to remove, {change.changed:,} to change, {change.unchanged:,} unchanged."
    )
    for name, lines in (("added", change.added_lines), ("changed", change.changed_lines)):
        if lines:
            more = " …" if len(lines) < {"added": change.added, "changed": change.changed}[name] else ""
            click.echo(f"  {name}: line " + ", ".join(str(line) for line in lines) + more)


def _print_state(state: RegisterState) -> None:
    if state.live is None:
        click.echo("The register is empty: no generation is live.")
        return
    click.echo(f"Live: generation {state.live}, {state.live_entries:,} entries, since {_when(state.live_since)}.")
    if state.previous is not None:
        click.echo(
            f"Previous: generation {state.previous}, {state.previous_entries:,} entries, "
            f"live until {_when(state.live_since)}."
        )


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment else "unknown"
