"""The operator's register import, through the CLI, into DynamoDB on moto."""

from __future__ import annotations

import csv
import io

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.domain.register import REGISTER_COLUMNS
from ops.cli import main
from tests.builders import register_row


@pytest.fixture
def operator_env(environment, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "REGISTER_TABLE", "CLAIMS_TABLE", "REGISTER_KEY"):
        monkeypatch.setenv(name, environment[name])
    return environment


def write_csv(path, rows, columns=REGISTER_COLUMNS, bom=False):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    return path


def stored_items(env) -> list[dict]:
    dynamodb = boto3.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"])
    return sorted(dynamodb.scan(TableName=env["REGISTER_TABLE"])["Items"], key=lambda i: i["reference_key"]["S"])


def run_import(path):
    return CliRunner().invoke(main, ["register", "import", "--quiet", str(path)])


def test_a_clean_export_is_imported_and_reimporting_it_changes_nothing(operator_env, tmp_path):
    export = write_csv(tmp_path / "export.csv", [register_row(f"FA/{i:05d}") for i in range(60)], bom=True)
    first = run_import(export)
    assert first.exit_code == 0, first.output
    assert "60 rows written, 0 rejected, 0 removed" in first.output
    before = stored_items(operator_env)
    assert len(before) == 60
    assert run_import(export).exit_code == 0
    assert stored_items(operator_env) == before


def test_nothing_readable_is_stored(operator_env, tmp_path):
    run_import(write_csv(tmp_path / "export.csv", [register_row("FA/12345", "SW1A 2AA", certificate_type="shotgun")]))
    [item] = stored_items(operator_env)
    assert set(item) == {"reference_key", "postcode_mac", "status", "expires_on", "free_kit"}
    flattened = repr(item).upper()
    for clear in ("12345", "SW1A", "2AA", "SHOTGUN"):
        assert clear not in flattened


def test_malformed_rows_are_reported_by_line_and_skipped(operator_env, tmp_path):
    rows = [
        register_row("FA/00001"),
        register_row("FA/00002", status="lapsed"),
        register_row("FA/00003", postcode="nowhere", expiry_date="someday"),
        register_row("FA/00004"),
        register_row("fa 00001"),
    ]
    result = run_import(write_csv(tmp_path / "export.csv", rows))
    assert result.exit_code == 1
    assert "2 rows written, 3 rejected" in result.output and "were kept" in result.output
    assert "line 3: status: must be one of" in result.output
    assert "line 4: expiry_date:" in result.output and "postcode: Enter a full UK postcode" in result.output
    assert "line 6: certificate_reference: repeats line 2" in result.output
    assert len(stored_items(operator_env)) == 2


def test_a_file_without_the_expected_columns_is_refused_whole(operator_env, tmp_path):
    export = write_csv(tmp_path / "export.csv", [register_row()], columns=("certificate_reference", "postcode"))
    result = run_import(export)
    assert result.exit_code != 0
    assert "lacks the columns: certificate_type, status, expiry_date, free_kit" in result.output
    assert stored_items(operator_env) == []


def test_missing_configuration_is_named_without_a_traceback(operator_env, tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTER_KEY")
    result = run_import(write_csv(tmp_path / "export.csv", [register_row()]))
    assert result.exit_code != 0 and "REGISTER_KEY must be set" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_columns():
    result = CliRunner().invoke(main, ["register", "import", "--help"])
    assert result.exit_code == 0 and "certificate_reference" in result.output


def test_each_import_replaces_the_register_so_dropped_certificates_disappear(operator_env, tmp_path):
    first = write_csv(tmp_path / "monday.csv", [register_row(f"FA/{i:05d}") for i in range(5)])
    assert run_import(first).exit_code == 0
    second = write_csv(tmp_path / "tuesday.csv", [register_row(f"FA/{i:05d}") for i in range(3)])  # two revoked
    result = run_import(second)
    assert result.exit_code == 0 and "3 rows written, 0 rejected, 2 removed" in result.output
    assert len(stored_items(operator_env)) == 3


def test_a_file_with_rejected_rows_removes_nothing(operator_env, tmp_path):
    run_import(write_csv(tmp_path / "monday.csv", [register_row(f"FA/{i:05d}") for i in range(5)]))
    rows = [register_row("FA/00000"), register_row("FA/00001", status="lapsed")]
    result = run_import(write_csv(tmp_path / "tuesday.csv", rows))
    assert result.exit_code == 1 and "0 removed" in result.output and "were kept" in result.output
    assert len(stored_items(operator_env)) == 5
