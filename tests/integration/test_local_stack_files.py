"""What `make run` leaves on disk and prints: the operator's env file, the mail folder, and moto's
log (no line per request)."""

from __future__ import annotations

import logging

import requests

from devstack.mailbox import MailBox
from devstack.moto_server import start_moto_server
from devstack.stack import remove_operator_file, stack_settings, write_operator_file
from ops.cli.common import read_environment_file
from tests.conftest import REGION

RESOURCES = {"ORDERS_TABLE": "local-orders", "API_KEYS_TABLE": "local-keys"}


def settings_of_a_run() -> dict[str, str]:
    return stack_settings(RESOURCES, "http://127.0.0.1:5001", "http://127.0.0.1:8000", {"STRIPE_API_BASE": "x"})


def test_the_operator_file_holds_the_runs_settings_for_the_owner_only_and_goes_with_the_stack(tmp_path):
    settings = settings_of_a_run()
    path = write_operator_file(settings, tmp_path / "stack.env")
    assert path.stat().st_mode & 0o777 == 0o600 and not (tmp_path / "stack.env.part").exists()
    written = read_environment_file(path)
    assert written == {name: value for name, value in settings.items() if name != "PYTHONUNBUFFERED"}
    assert written["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5001" and written["ORDERS_TABLE"] == "local-orders"
    write_operator_file({**settings, "ORDERS_TABLE": "replaced"}, path)  # a second run replaces it whole
    assert read_environment_file(path)["ORDERS_TABLE"] == "replaced"
    remove_operator_file(path)
    assert not path.exists()


def test_each_run_has_fresh_secrets():
    first, second = settings_of_a_run(), settings_of_a_run()
    for secret in ("REGISTER_KEY", "JOURNEY_KEY"):
        assert len(first[secret]) >= 32 and first[secret] != second[secret]


def test_the_mail_folder_starts_without_an_earlier_runs_messages(tmp_path):
    (tmp_path / "001-order-confirmed.txt").write_text("an earlier run's")
    (tmp_path / "notes.md").write_text("not the mailbox's")
    mailbox = MailBox(tmp_path, REGION, interval=60)
    mailbox.start()
    mailbox.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_moto_logs_no_line_per_request(caplog):
    server, url = start_moto_server()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            assert requests.get(f"{url}/moto-api/data.json", timeout=10).status_code == 200
    finally:
        server.stop()
    assert not [record for record in caplog.records if record.name == "werkzeug"]
