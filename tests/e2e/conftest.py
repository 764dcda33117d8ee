"""The local stack as `make run` starts it, shared by the end-to-end and browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    ports = {"app": free_port(), "moto": free_port(), "stripe": free_port()}
    mail = tmp_path_factory.mktemp("mail")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.stack",
            "--app-port",
            str(ports["app"]),
            "--moto-port",
            str(ports["moto"]),
            "--stripe-port",
            str(ports["stripe"]),
            "--schedule-seconds",
            "1",
            "--mail-folder",
            str(mail),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner = _read_until(process, "Demo certificates", timeout=90)
    output: list[str] = []
    drain = threading.Thread(target=lambda: output.extend(iter(process.stdout.readline, "")), daemon=True)
    drain.start()  # keep reading, so a full pipe never blocks the stack
    yield {
        "app": f"http://127.0.0.1:{ports['app']}",
        "moto": f"http://127.0.0.1:{ports['moto']}",
        "stripe": f"http://127.0.0.1:{ports['stripe']}",
        "banner": banner,
        "mail": mail,
        "output": output,
    }
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("the stack exited:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return "".join(seen + [process.stdout.readline() for _ in range(6)])
    raise AssertionError("the stack did not start:\n" + "".join(seen))


def queued(stack) -> list[dict]:
    """Drain the fulfilment queue as the manufacturer would."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack["moto"],
        region_name="eu-west-2",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    url = sqs.get_queue_url(QueueName="tracekit-local-fulfilment-queue.fifo")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


ARTEFACTS = ROOT / "artefacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (never a browser Playwright downloads).

    Missing Chromium skips these tests loudly on a laptop and fails them on CI (CI=1)."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "Debian's chromium is not installed: browser tests cannot run (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip("SKIPPED LOUDLY: " + message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    context = chromium.new_context()
    page = context.new_page()
    yield page
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{request.node.name}-last.png"), full_page=True)
    context.close()


def synthetic_holders(free: bool) -> list[tuple[str, str]]:
    """(reference, postcode) of current synthetic holders, paid or free by the register flag.

    Tests sharing the one stack each take a different holder: a certificate orders only once."""
    import csv
    from datetime import date

    with (ROOT / "devstack" / "synthetic_register.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["certificate_reference"].startswith("SYN/2")]
    outward = {"E1", "N17"}  # free-kit areas of the local stack are within these districts
    return [
        (r["certificate_reference"], r["postcode"])
        for r in rows
        if r["status"] == "in force"
        and date.fromisoformat(r["expiry_date"]) > date.today()
        and (r["free_kit"] == "yes") == free
        and (free or r["postcode"].split()[0] not in outward)
    ]
