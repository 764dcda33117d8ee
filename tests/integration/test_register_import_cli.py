"""The operator's register import, through the CLI, into DynamoDB on moto: all or nothing.

The refusals replay what an adversarial pass found (issue 14): each bad file is refused with a
line-numbered reason, exit status non-zero, no traceback, and the live register as it was, so
its holders still pass the certificate check."""

from __future__ import annotations

import csv
import io
import sys

import boto3
import pytest
from click.testing import CliRunner

from chalicelib import services
from chalicelib.adapters.dynamodb import build_models
from chalicelib.adapters.dynamodb_register import DynamoRegister
from chalicelib.bootstrap import tables_for
from chalicelib.domain.errors import CertificateNotAccepted
from chalicelib.domain.register import REGISTER_COLUMNS
from ops.cli import main
from tests.builders import register_row

POSTCODE = "SW1A 2AA"
HEADER = ",".join(REGISTER_COLUMNS) + "\n"


@pytest.fixture
def operator_env(environment, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "REGISTER_TABLE", "CLAIMS_TABLE", "CONTACTS_TABLE", "REGISTER_KEY"):
        monkeypatch.setenv(name, environment[name])
    return environment


def csv_text(rows, columns=REGISTER_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path, rows, columns=REGISTER_COLUMNS, bom=False):
    path.write_text(("\ufeff" if bom else "") + csv_text(rows, columns), encoding="utf-8")
    return path


def holders(count: int, start: int = 0, **changes) -> list[dict[str, str]]:
    return [register_row(f"FA/{i:05d}", POSTCODE, **changes) for i in range(start, start + count)]


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["register", *args], input=stdin)


def run_import(path, *options: str, stdin: str | None = None):
    return run("import", "--quiet", *options, str(path), stdin=stdin)


def a_register(settings) -> DynamoRegister:
    """The register as another process sees it (a fresh container)."""
    return DynamoRegister(build_models(tables_for(settings)))


def live_entries(settings) -> dict:
    register = a_register(settings)
    state = register.state()
    return {} if state.live is None else {e.reference_key: e for e in register.entries(state.live)}


def passes(deps, reference: str) -> bool:
    try:
        services.check_certificate(reference, POSTCODE, deps)
    except CertificateNotAccepted:
        return False
    return True


@pytest.fixture
def live_register(operator_env, tmp_path, settings, deps):
    """206 holders imported, as on the local stack the issue's files were tried against; the
    app's container (deps) has seen it, as a warm Lambda container would."""
    result = run_import(write_csv(tmp_path / "monday.csv", holders(206)), "--yes")
    assert result.exit_code == 0, result.output
    assert passes(deps, "FA/00000") and passes(deps, "FA/00205")
    return a_register(settings).state()


def assert_refused_and_unchanged(result, before, settings, deps, *expected: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.output, result.output
    assert a_register(settings).state() == before
    assert len(live_entries(settings)) == 206
    assert passes(deps, "FA/00000") and passes(deps, "FA/00205")


# --- the files, replayed ---------------------------------------------------------------


def test_a_header_only_file_is_refused(live_register, tmp_path, settings, deps):
    result = run_import(write_csv(tmp_path / "empty.csv", []), "--yes", "--allow-shrink")
    assert_refused_and_unchanged(result, live_register, settings, deps, "no rows", "206 to remove")


def test_an_empty_file_is_refused(live_register, tmp_path, settings, deps):
    (tmp_path / "zero.csv").write_bytes(b"")
    result = run_import(tmp_path / "zero.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "  the file is empty")


def test_a_one_row_file_against_the_register_is_refused_as_a_shrink(live_register, tmp_path, settings, deps):
    result = run_import(write_csv(tmp_path / "one.csv", holders(1)), "--yes")
    assert_refused_and_unchanged(
        result,
        live_register,
        settings,
        deps,
        "remove 205 of the 206 entries",
        "REGISTER_MAX_REMOVAL_PERCENT",
        "--allow-shrink",
    )


def test_a_file_cut_after_twenty_rows_is_refused(live_register, tmp_path, settings, deps):
    text = csv_text(holders(206))
    cut = text[: text.index("FA/00020")]  # cut mid-file, as an interrupted download is
    (tmp_path / "cut.csv").write_text(cut + "FA/00020,fire", encoding="utf-8")
    result = run_import(tmp_path / "cut.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "line 22: 2 fields where the header has 6")
    (tmp_path / "cut.csv").write_text(cut, encoding="utf-8")  # cut at a line's end: every row sound
    result = run_import(tmp_path / "cut.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "remove 186 of the 206 entries")


def test_a_byte_that_is_not_utf8_deep_in_a_long_file_is_refused(live_register, tmp_path, settings, deps):
    lines = csv_text(holders(3006)).encode().split(b"\n")
    lines[2500] = lines[2500].replace(b"firearm", b"fire\xffarm")  # row 2,500 is line 2,501
    (tmp_path / "ff.csv").write_bytes(b"\n".join(lines))
    result = run_import(tmp_path / "ff.csv", "--yes")
    assert_refused_and_unchanged(
        result,
        live_register,
        settings,
        deps,
        "1 problem in the file",
        "line 2501: byte 0xFF at position 14 is not UTF-8",
        "CSV UTF-8",
    )


def test_a_200_kb_field_is_refused(live_register, tmp_path, settings, deps):
    rows = holders(206)
    rows[9]["postcode"] = "A" * 200_000
    result = run_import(write_csv(tmp_path / "big.csv", rows), "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "line 11: the line is longer than 4,096 bytes")
    text = csv_text(holders(206)).replace("FA/00009,", 'FA/00009,"' + "x\n" * 100_000 + '",')  # one field of many lines
    (tmp_path / "quoted.csv").write_text(text, encoding="utf-8")
    result = run_import(tmp_path / "quoted.csv", "--yes")
    assert_refused_and_unchanged(
        result, live_register, settings, deps, "line 11: a field is longer than 1,024 characters"
    )


def test_a_utf16_file_is_refused_with_how_to_export_it(live_register, tmp_path, settings, deps):
    (tmp_path / "utf16.csv").write_text(csv_text(holders(206)), encoding="utf-16")
    result = run_import(tmp_path / "utf16.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "the file is UTF-16, not UTF-8", "CSV UTF-8")
    (tmp_path / "utf16le.csv").write_text(csv_text(holders(206)), encoding="utf-16-le")  # no BOM
    result = run_import(tmp_path / "utf16le.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "line 1 holds NUL bytes")


def test_two_rows_for_one_reference_that_disagree_are_refused_naming_both(live_register, tmp_path, settings, deps):
    rows = [*holders(206), register_row("fa 00007", POSTCODE, status="revoked")]
    result = run_import(write_csv(tmp_path / "twice.csv", rows), "--yes")
    assert_refused_and_unchanged(
        result, live_register, settings, deps, "line 208: the same certificate as line 9, with different details"
    )


def test_a_row_missing_its_last_field_is_refused(live_register, tmp_path, settings, deps):
    lines = csv_text(holders(206)).split("\n")
    lines[51] = lines[51].rsplit(",", 1)[0]  # free_kit, and its comma, gone
    (tmp_path / "short.csv").write_text("\n".join(lines), encoding="utf-8")
    result = run_import(tmp_path / "short.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "line 52: 5 fields where the header has 6")


def test_a_row_with_an_extra_field_is_refused(live_register, tmp_path, settings, deps):
    lines = csv_text(holders(206)).split("\n")
    lines[100] += ",surplus"
    (tmp_path / "long.csv").write_text("\n".join(lines), encoding="utf-8")
    result = run_import(tmp_path / "long.csv", "--yes")
    assert_refused_and_unchanged(result, live_register, settings, deps, "line 101: 7 fields where the header has 6")


def test_every_bad_row_is_reported_up_to_a_cap_and_the_rest_counted(live_register, tmp_path, settings, deps):
    rows = [*holders(100), *holders(106, start=100, status="lapsed")]
    result = run_import(write_csv(tmp_path / "lapsed.csv", rows), "--yes")
    assert_refused_and_unchanged(
        result,
        live_register,
        settings,
        deps,
        "106 problems in the file",
        "line 102: status: must be one of",
        "… and 56 more",
    )
    assert result.output.count("status: must be one of") == 50


def test_a_file_without_the_expected_columns_is_refused_whole(live_register, tmp_path, settings, deps):
    export = write_csv(tmp_path / "export.csv", holders(206), columns=("certificate_reference", "postcode"))
    result = run_import(export, "--yes")
    assert_refused_and_unchanged(
        result,
        live_register,
        settings,
        deps,
        "line 1: the file lacks the columns: certificate_type, status, expiry_date, free_kit",
    )


# --- what a good file does -------------------------------------------------------------------------


def test_a_clean_export_switches_at_once_and_reimporting_it_changes_nothing(operator_env, tmp_path, settings, deps):
    export = write_csv(tmp_path / "export.csv", holders(60), bom=True)
    first = run_import(export, "--yes")
    assert first.exit_code == 0, first.output
    assert "Checked: 60 rows, no problems." in first.output and "60 to add" in first.output
    assert "Switched: generation 1 is live, 60 entries." in first.output
    before = (a_register(settings).state(), live_entries(settings))
    assert len(before[1]) == 60 and passes(deps, "FA/00059")
    again = run_import(export)  # no --yes needed: there is nothing to switch
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert (a_register(settings).state(), live_entries(settings)) == before


def test_an_import_replaces_the_register_and_rollback_restores_it(live_register, tmp_path, settings, deps):
    tuesday = [*holders(200), *holders(3, start=900)]  # six certificates gone, three new
    result = run_import(write_csv(tmp_path / "tuesday.csv", tuesday), "--yes")
    assert result.exit_code == 0, result.output
    assert "3 to add, 6 to remove, 0 to change, 200 unchanged" in result.output
    assert "Generation 1 is kept" in result.output
    assert not passes(deps, "FA/00205") and passes(deps, "FA/00901")  # the app's container sees it at once
    rolled = run("rollback", "--yes")
    assert rolled.exit_code == 0 and "Rolled back: generation 1 is live, 206 entries." in rolled.output
    assert passes(deps, "FA/00205") and not passes(deps, "FA/00902")
    assert a_register(settings).state().previous == 2


def test_an_import_removes_the_contacts_of_certificates_dropped_or_no_longer_in_force(
    live_register, tmp_path, settings, deps
):
    from chalicelib.services import contacts
    from tests.unit.test_contacts import confirm_token

    for reference in ("FA/00000", "FA/00100", "FA/00205"):
        form = {"reference": reference, "postcode": POSTCODE, "email": f"{reference[3:]}@example.com"}
        contacts.request_registration({**form, "contact_consent": "yes"}, deps, "198.51.100.7")
        contacts.confirm_registration(confirm_token(deps, form["email"]), deps)
    tuesday = [*holders(100), *holders(1, start=100, status="revoked"), *holders(104, start=101)]  # 00205 gone
    result = run_import(write_csv(tmp_path / "tuesday.csv", tuesday), "--yes")
    assert result.exit_code == 0, result.output
    assert "Removed the contact register's entries of 2 certificate(s) no longer in force." in result.output
    assert [email for email, _, _ in contacts.contact_list(deps)] == ["00000@example.com"]


def test_generations_older_than_the_previous_are_deleted_after_a_switch(live_register, tmp_path, settings):
    for day, status in (("tuesday", "expired"), ("wednesday", "in force")):
        result = run_import(write_csv(tmp_path / f"{day}.csv", holders(206, status=status)), "--yes")
        assert result.exit_code == 0, result.output
    assert "Deleted generation 1 (206 entries)." in result.output
    state = a_register(settings).state()
    assert (state.live, state.previous, state.generations) == (3, 2, frozenset({2, 3}))


def test_a_dry_run_shows_the_changes_and_changes_nothing(live_register, tmp_path, settings, deps):
    rows = [*holders(205), register_row("FA/00205", POSTCODE, status="revoked"), *holders(2, start=700)]
    result = run_import(write_csv(tmp_path / "tuesday.csv", rows), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 to add, 0 to remove, 1 to change, 205 unchanged" in result.output
    assert "added: line 208, 209" in result.output and "changed: line 207" in result.output
    assert "Dry run: nothing changed." in result.output
    assert a_register(settings).state() == live_register and passes(deps, "FA/00205")


def test_allow_shrink_lets_a_small_file_through(live_register, tmp_path, settings, deps):
    result = run_import(write_csv(tmp_path / "one.csv", holders(1)), "--yes", "--allow-shrink")
    assert result.exit_code == 0, result.output
    assert len(live_entries(settings)) == 1 and not passes(deps, "FA/00205")


def test_not_on_a_terminal_and_without_yes_nothing_switches(live_register, tmp_path, settings):
    result = run_import(write_csv(tmp_path / "tuesday.csv", holders(206, status="expired")))
    assert result.exit_code != 0 and "pass --yes" in result.output
    assert a_register(settings).state() == live_register


@pytest.mark.parametrize(("answer", "switched"), [("n\n", False), ("y\n", True)])
def test_on_a_terminal_the_command_asks_before_switching(
    live_register, tmp_path, settings, monkeypatch, answer, switched
):
    monkeypatch.setattr(sys.modules["ops.cli.register"], "_on_a_terminal", lambda: True)  # the group shadows its module
    result = run_import(write_csv(tmp_path / "tuesday.csv", holders(206, status="expired")), stdin=answer)
    assert (
        "0 to add, 0 to remove, 206 to change" in result.output and "Switch the register to this file?" in result.output
    )
    assert (result.exit_code == 0) is switched
    assert (a_register(settings).state().live == 2) is switched


def test_an_exact_repeat_is_imported_once_and_said(operator_env, tmp_path, settings):
    rows = [*holders(5), register_row("fa 00002", POSTCODE)]
    result = run_import(write_csv(tmp_path / "export.csv", rows), "--yes")
    assert result.exit_code == 0, result.output
    assert "1 row repeats an earlier row exactly, and are imported once: line 7 (= line 4)" in result.output
    assert len(live_entries(settings)) == 5


def test_prune_deletes_what_a_crashed_import_left_and_a_second_prune_changes_nothing(live_register, settings, deps):
    crashed = a_register(settings)
    leftover = crashed.start_generation()
    crashed.save_all(leftover, live_entries(settings).values())  # then the process died
    result = run("prune")
    assert result.exit_code == 0 and f"Deleted generation {leftover} (206 entries)." in result.output
    assert list(crashed.entries(leftover)) == [] and a_register(settings).state().live == live_register.live
    assert "0 entries deleted." in run("prune").output
    assert passes(deps, "FA/00000")


def test_status_names_the_live_and_previous_generations(live_register, tmp_path):
    run_import(write_csv(tmp_path / "tuesday.csv", holders(206, status="expired")), "--yes")
    result = run("status")
    assert "Live: generation 2, 206 entries" in result.output and "Previous: generation 1, 206 entries" in result.output


def test_rollback_without_a_previous_generation_is_refused(live_register):
    result = run("rollback", "--yes")
    assert result.exit_code != 0 and "no previous generation" in result.output


# --- what is stored, and the command itself --------------------------------------------------------


def test_nothing_readable_is_stored(operator_env, tmp_path):
    run_import(
        write_csv(tmp_path / "export.csv", [register_row("FA/12345", "SW1A 2AA", certificate_type="shotgun")]), "--yes"
    )
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=operator_env["AWS_ENDPOINT_URL"], region_name=operator_env["AWS_REGION"]
    )
    items = dynamodb.scan(TableName=operator_env["REGISTER_TABLE"])["Items"]
    [entry] = [item for item in items if "postcode_mac" in item]
    assert set(entry) == {"bucket", "reference_key", "postcode_mac", "status", "expires_on", "free_kit"}
    flattened = repr(items).upper()
    for clear in ("12345", "SW1A", "2AA", "SHOTGUN"):
        assert clear not in flattened


def test_missing_configuration_is_named_without_a_traceback(operator_env, tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTER_KEY")
    result = run_import(write_csv(tmp_path / "export.csv", [register_row()]))
    assert result.exit_code != 0 and "REGISTER_KEY must be set" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_columns_and_the_options():
    result = CliRunner().invoke(main, ["register", "import", "--help"])
    assert result.exit_code == 0 and "certificate_reference" in result.output
    for option in ("--dry-run", "--yes", "--allow-shrink"):
        assert option in result.output
