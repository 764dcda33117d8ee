"""A Lambda cold start pays only for what app.py imports: importing it, in a fresh interpreter with
no AWS or app configuration at all, loads neither Stripe, Jinja2 nor openpyxl and creates no boto3
session or botocore client. Routes build those on first use (benchmarks/cold_start.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The child counts sessions and clients made while app.py is imported, then reports what is loaded.
IMPORT_APP = """
import json, sys
import boto3.session, botocore.session
made = {"clients": 0, "sessions": 0}
create_client, session_init = botocore.session.Session.create_client, boto3.session.Session.__init__
def counting_create_client(self, *args, **kwargs):
    made["clients"] += 1
    return create_client(self, *args, **kwargs)
def counting_session_init(self, *args, **kwargs):
    made["sessions"] += 1
    session_init(self, *args, **kwargs)
botocore.session.Session.create_client = counting_create_client
boto3.session.Session.__init__ = counting_session_init
import app
print(json.dumps({**made, "loaded": [m for m in ("stripe", "jinja2", "openpyxl") if m in sys.modules]}))
"""


def import_app_in_a_fresh_interpreter(home: Path) -> dict:
    minimal = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(  # fixed argv: this interpreter, our own code
        [sys.executable, "-c", IMPORT_APP], cwd=ROOT, env=minimal, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_app_needs_no_configuration_and_builds_nothing(tmp_path):
    imported = import_app_in_a_fresh_interpreter(tmp_path)
    assert imported["loaded"] == [], "stripe, jinja2 and openpyxl load only when a route needs them"
    assert imported["clients"] == 0, "no botocore client is created at import"
    assert imported["sessions"] == 0, "no boto3 session is created at import"
