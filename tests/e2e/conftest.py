"""The local stack as `make run` starts it, shared by the end-to-end and browser tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


E2E = Path(__file__).resolve().parent
# The first test to use the stack also waits for it to start (up to STARTUP_SECONDS), and Chromium
# is slow on a busy machine: these tests get twice pytest.ini's limit.
E2E_TIMEOUT = 600
STARTUP_SECONDS = 150


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E not in item.path.parents:
            continue
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
        # One pytest-xdist worker runs them all (`make test` runs `--dist loadgroup`), so the
        # session's one local stack and one Chromium serve every browser test, as in a serial run.
        item.add_marker(pytest.mark.xdist_group("local-stack"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    ports = {"app": free_port(), "console": free_port(), "moto": free_port(), "stripe": free_port()}
    mail = tmp_path_factory.mktemp("mail")
    (mail / "001-an-earlier-run.txt").write_text("left by an earlier run")
    operator_file = tmp_path_factory.mktemp("operator") / "stack.env"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.stack",
            "--app-port",
            str(ports["app"]),
            "--console-port",
            str(ports["console"]),
            "--moto-port",
            str(ports["moto"]),
            "--stripe-port",
            str(ports["stripe"]),
            "--schedule-seconds",
            "1",
            "--mail-folder",
            str(mail),
            "--operator-env-file",
            str(operator_file),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, so its children can be ended with it
    )
    try:
        output = StackOutput(process.stdout)
        banner = output.until("Demo order", then=0, timeout=STARTUP_SECONDS)  # its last line
        running = {
            "app": f"http://127.0.0.1:{ports['app']}",
            "console": f"http://127.0.0.1:{ports['console']}",
            "staff": demo_staff(banner),
            "demo_order": re.search(r"Demo order .*: (\S+)", banner).group(1),
            "moto": f"http://127.0.0.1:{ports['moto']}",
            "stripe": f"http://127.0.0.1:{ports['stripe']}",
            "banner": banner,
            "mail": mail,
            "operator_file": operator_file,
            "output": output.lines,
        }
        running["demo_fulfilment"] = queued(running)  # taken off the queue: each test sees only its own
        yield running
    finally:
        end_stack(process)


def demo_staff(banner: str) -> dict[str, tuple[str, str]]:
    """Each group's demo user as the banner prints it: group -> (username, password)."""
    found = re.findall(r"^ +(\S+) +(\S+@staff\.tracekit\.invalid) +password (\S+)$", banner, re.MULTILINE)
    return {group: (username, password) for group, username, password in found}


class StackOutput:
    """Everything the stack prints, read from the start on a thread of its own: a full pipe never
    blocks the stack, and a stack that hangs without a word cannot hold a test past its deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, args=(stream,), name="stack-output", daemon=True).start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def until(self, marker: str, then: int, timeout: float) -> str:
        """The output up to the first line containing `marker`, and `then` lines more."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._end(marker, then) is not None, timeout)
            end, seen = self._end(marker, then), "".join(self.lines)
        if end is None:
            why = "exited" if self._closed else f"did not start within {timeout:.0f} s"
            raise AssertionError(f"the stack {why}:\n{seen}")
        return "".join(self.lines[:end])

    def _end(self, marker: str, then: int) -> int | None:
        for number, line in enumerate(self.lines):
            if marker in line:
                return number + 1 + then if len(self.lines) > number + then else None
        return None


def end_stack(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM, which the stack takes as Ctrl-C (it stops its children itself); SIGKILL to its
    whole process group after `grace` seconds, and in any case to whatever of the group outlived it
    (chalice local, a register import), so no test run leaves a stack behind, failed or not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group start_new_session made, led by the stack
    process.wait(timeout=10)
    process.stdout.close()


def manufacturer_token(stack, label: str = "Kit Maker Ltd") -> str:
    """A kit maker's API key, made in the stack's own key table as `ops keys create` makes one."""
    from chalicelib import bootstrap
    from chalicelib.domain.credentials import Scope
    from chalicelib.services.credentials import create_api_key
    from chalicelib.timeutil import utc_now
    from devstack.aws import load_resources, physical_name
    from devstack.stack import REGION

    table = physical_name("local", "ApiKeysTable", load_resources()["ApiKeysTable"])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "local")
        env.setenv("AWS_SECRET_ACCESS_KEY", "local")
        store = bootstrap.key_store(table, REGION, stack["moto"])
        return create_api_key(Scope.MANUFACTURER, label, store, utc_now())[1]


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
    from datetime import date

    from chalicelib.domain.register import REGISTER_COLUMNS
    from devstack.synthetic_register import DEMO_ORDER_HOLDER, LOCAL_EXTRA_ROWS, synthetic_rows, utc_today

    today = utc_today()  # the stack wrote its register today, from the same rows
    rows = [dict(zip(REGISTER_COLUMNS, row, strict=True)) for row in synthetic_rows(LOCAL_EXTRA_ROWS, today=today)]
    outward = {"E1", "N17"}  # free-kit areas of the local stack are within these districts
    return [
        (r["certificate_reference"], r["postcode"])
        for r in rows
        if r["status"] == "in force"
        and date.fromisoformat(r["expiry_date"]) > today
        and (r["free_kit"] == "yes") == free
        and (free or r["postcode"].split()[0] not in outward)
        and r["certificate_reference"] != DEMO_ORDER_HOLDER[0]  # the stack ordered for it at start-up
    ]
