"""A Lambda cold start pays only for what app.py imports: importing it, in a fresh interpreter with
no AWS or app configuration at all, loads neither Stripe, Jinja2 nor openpyxl and creates no boto3
session or botocore client. Routes build those on first use (benchmarks/cold_start.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.cold_start import IMPORT_AUDIT

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(script: str, home: Path) -> dict:
    """`script` in a fresh interpreter with no AWS or app configuration; its last line is JSON."""
    minimal = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(  # fixed argv: this interpreter, our own code
        [sys.executable, "-c", script], cwd=ROOT, env=minimal, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_app_needs_no_configuration_and_builds_nothing(tmp_path):
    # The benchmark's audit: sessions and clients made while app.py is imported, then what is loaded.
    imported = run_fresh(IMPORT_AUDIT, tmp_path)
    assert imported["loaded"] == [], "stripe, jinja2 and openpyxl load only when a route needs them"
    assert imported["clients"] == 0, "no botocore client is created at import"
    assert imported["sessions"] == 0, "no boto3 session is created at import"


# Builds the real adapters (no AWS request is made by building them), then uses them as the routes would.
BUILD_THEN_USE = """
import json, sys
from chalicelib import bootstrap
from tests.builders import fake_settings
deps = bootstrap.build(fake_settings(AWS_ENDPOINT_URL="http://127.0.0.1:9"))
seen = {"built": "stripe" in sys.modules}
deps.fulfilments, deps.orders, deps.api_keys  # what the manufacturer's routes use
seen["manufacturer routes"] = "stripe" in sys.modules
deps.payments.start_checkout  # what placing an order uses
seen["payment route"] = "stripe" in sys.modules
print(json.dumps(seen))
"""


def test_stripe_is_imported_by_the_first_use_of_payments_not_by_building_the_adapters(tmp_path):
    seen = run_fresh(BUILD_THEN_USE, tmp_path)
    assert seen == {"built": False, "manufacturer routes": False, "payment route": True}
