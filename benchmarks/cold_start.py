"""Benchmark: what a Lambda cold start pays for tracekit, measured in fresh processes.

The design being checked: importing app.py does not import Stripe or Jinja2 until a route needs
them, and creates no AWS client. A benchmark reports the app's import time against a bare import of
boto3 and Chalice in the same run, and the manufacturer and finance routes' first-request time.

    .venv/bin/python benchmarks/cold_start.py [--runs 10] [--request-runs 3]

1. `import app` and a bare `import boto3, chalice`, each timed (time.perf_counter, inside the
   child) in --runs fresh interpreters, interleaved so both see the same machine load.
2. A child that counts botocore clients and boto3 sessions created while app.py is imported, and
   which of stripe, jinja2 and openpyxl are then loaded. Any of these makes the exit status 1.
3. The console's import (its function imports it on its first request), and then the dashboard's
   charts (leather) on top, in --runs fresh interpreters; importing the console must not load
   leather (only the dashboard's page imports it).
4. GET /manufacturer/fulfilment-orders and GET /finance/reconciliation, each in --request-runs
   fresh children with the app's whole environment (moto and the Stripe emulator started here, on
   loopback): the import, the first request (which builds the boto3 session and PynamoDB models,
   and for finance the Stripe client) and a second request, through chalice.test.Client. Every answer must be 200.

Numbers from a laptop are not Lambda's (CPU share, disk, network); compare them within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.register_import import free_port  # noqa: E402

REGION = "eu-west-2"
HEAVY = ("stripe", "jinja2", "openpyxl")  # imported only when a route needs them
WATCHED = (*HEAVY, "boto3", "botocore", "pynamodb")

BARE_IMPORT = """
import json, time
started = time.perf_counter()
import boto3, chalice
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

APP_IMPORT = """
import json, sys, time
started = time.perf_counter()
import app
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "loaded": [m for m in %r if m in sys.modules]}))
""" % (WATCHED,)

# The console's function imports its app on its first request; the dashboard's page alone imports
# the charts (leather). Timed apart: what the console's cold start pays, and what the charts add.
CONSOLE_IMPORT = """
import json, sys, time
started = time.perf_counter()
import chalicelib.web.console
console = time.perf_counter() - started
started = time.perf_counter()
import chalicelib.web.charts
charts = time.perf_counter() - started
print(json.dumps({"console": console, "charts": charts, "leather_at_console_import": False}))
"""
CONSOLE_AUDIT = """
import json, sys
import chalicelib.web.console
print(json.dumps({"leather": "leather" in sys.modules}))
"""

# Instruments before importing (so botocore is loaded here by the child itself, not by app.py).
IMPORT_AUDIT = """
import json, sys
import boto3.session, botocore.session
counts = {"clients": 0, "sessions": 0}
create_client, session_init = botocore.session.Session.create_client, boto3.session.Session.__init__
def counting_create_client(self, *args, **kwargs):
    counts["clients"] += 1
    return create_client(self, *args, **kwargs)
def counting_session_init(self, *args, **kwargs):
    counts["sessions"] += 1
    session_init(self, *args, **kwargs)
botocore.session.Session.create_client = counting_create_client
boto3.session.Session.__init__ = counting_session_init
import app
print(json.dumps({**counts, "loaded": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)

FIRST_REQUESTS = """
import json, os, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter() - started
loaded_at_import = [m for m in %r if m in sys.modules]
from chalice.test import Client
headers = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]}
seconds, statuses = [], []
with Client(app.app) as client:
    for _ in range(2):
        started = time.perf_counter()
        response = client.http.get(os.environ["BENCH_PATH"], headers=headers)
        seconds.append(time.perf_counter() - started)
        statuses.append(response.status_code)
print(json.dumps({"import": imported, "first": seconds[0], "second": seconds[1], "statuses": statuses,
                  "loaded_at_import": loaded_at_import, "loaded_after": [m for m in %r if m in sys.modules]}))
""" % (HEAVY, HEAVY)


def child(code: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs `code` in a fresh interpreter in the project root; its last stdout line is JSON."""
    done = subprocess.run(  # fixed argv: this interpreter, our own code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict[str, float]:
    ms = [1000 * value for value in values]
    return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1)}


def measure_imports(runs: int) -> dict[str, Any]:
    """Interleaved runs, after one untimed warm-up each (bytecode caches, page cache)."""
    child(BARE_IMPORT), child(APP_IMPORT)
    bare, app, loaded = [], [], set()
    for _ in range(runs):
        bare.append(child(BARE_IMPORT)["seconds"])
        result = child(APP_IMPORT)
        app.append(result["seconds"])
        loaded.update(result["loaded"])
    return {"app": summary(app), "bare_boto3_chalice": summary(bare), "modules_loaded_by_app": sorted(loaded)}


def measure_console_imports(runs: int) -> dict[str, Any]:
    """The console's import, then the charts' on top of it, in fresh interpreters (after a warm-up)."""
    child(CONSOLE_IMPORT)
    results = [child(CONSOLE_IMPORT) for _ in range(runs)]
    return {
        "console": summary([r["console"] for r in results]),
        "charts_on_top": summary([r["charts"] for r in results]),
        "leather_loaded_by_console_import": child(CONSOLE_AUDIT)["leather"],
    }


def audit_import() -> dict[str, Any]:
    result = child(IMPORT_AUDIT)
    return {
        "heavy_modules_loaded": result["loaded"],
        "botocore_clients": result["clients"],
        "boto3_sessions": result["sessions"],
    }


def start_stack() -> tuple[list[Any], dict[str, str], dict[str, str]]:
    """moto and the Stripe emulator on loopback; returns what to stop, the app's env and its keys."""
    import logging

    from moto.server import ThreadedMotoServer

    from chalicelib import bootstrap
    from chalicelib.domain.credentials import Scope
    from chalicelib.services.credentials import create_api_key
    from devstack.aws import create_resources
    from devstack.stack import app_environment
    from devstack.stripe_emulator import StripeEmulator

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{port}"
    emulator = StripeEmulator(port=0, webhook_secret="whsec_bench")
    emulator.start()
    resources = create_resources("bench", moto_url, REGION)
    stripe_env = {
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "STRIPE_API_BASE": emulator.base_url,
    }
    # the console's URL with the user pool's other settings (create_resources makes the pool)
    env = app_environment(resources, moto_url, "http://127.0.0.1", stripe_env, "http://127.0.0.1:9")
    store = bootstrap.key_store(resources["API_KEYS_TABLE"], REGION, moto_url)
    now = datetime.now(timezone.utc)
    tokens = {scope.value: create_api_key(scope, "cold-start benchmark", store, now)[1] for scope in Scope}
    return [emulator, moto], env, tokens


def measure_first_requests(runs: int) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    routes = {
        "manufacturer": "/manufacturer/fulfilment-orders",
        "finance": f"/finance/reconciliation?from={today}&to={today + timedelta(days=1)}",
    }
    stoppable, env, tokens = start_stack()
    try:
        results: dict[str, Any] = {}
        for scope, path in routes.items():
            runs_ = [
                child(FIRST_REQUESTS, {**env, "BENCH_PATH": path, "BENCH_TOKEN": tokens[scope]}) for _ in range(runs)
            ]
            bad = [status for run in runs_ for status in run["statuses"] if status != 200]
            if bad:
                raise SystemExit(f"GET {path} answered {bad}, not 200")
            results[scope] = {
                "path": path,
                **{part: summary([run[part] for run in runs_]) for part in ("import", "first", "second")},
                "heavy_modules_at_import": sorted({m for run in runs_ for m in run["loaded_at_import"]}),
                "heavy_modules_after_requests": sorted({m for run in runs_ for m in run["loaded_after"]}),
            }
        return results
    finally:
        for server in stoppable:
            server.stop()


def violations(audit: dict[str, Any], console: dict[str, Any]) -> list[str]:
    found = [f"importing app loaded {module}" for module in audit["heavy_modules_loaded"]]
    if console["leather_loaded_by_console_import"]:
        found.append("importing the console loaded leather (only the dashboard's page should)")
    if audit["botocore_clients"]:
        found.append(f"importing app created {audit['botocore_clients']} botocore client(s)")
    if audit["boto3_sessions"]:
        found.append(f"importing app created {audit['boto3_sessions']} boto3 session(s)")
    return found


def report(
    imports: dict[str, Any], audit: dict[str, Any], requests: dict[str, Any], runs: int, console: dict[str, Any]
) -> None:
    print("\nCold start of tracekit (this machine, not Lambda: compare numbers within one run)\n")
    print(f"  Import in a fresh interpreter ({runs} runs)        median ms   min ms")
    for label, key in (("import app", "app"), ("import boto3, chalice (bare)", "bare_boto3_chalice")):
        print(f"    {label:<46} {imports[key]['median_ms']:>9} {imports[key]['min_ms']:>8}")
    print(
        f"    modules among {', '.join(WATCHED)} loaded by `import app`: {imports['modules_loaded_by_app'] or 'none'}"
    )
    print(f"\n  The console's function ({runs} runs)                median ms   min ms")
    for label, key in (("import chalicelib.web.console", "console"), ("then the charts (leather)", "charts_on_top")):
        print(f"    {label:<46} {console[key]['median_ms']:>9} {console[key]['min_ms']:>8}")
    print(f"    leather loaded by importing the console: {console['leather_loaded_by_console_import']}")
    print("\n  At import of app.py")
    print(f"    stripe / jinja2 / openpyxl loaded: {audit['heavy_modules_loaded'] or 'none'}")
    print(f"    botocore clients created: {audit['botocore_clients']}; boto3 sessions: {audit['boto3_sessions']}")
    print("\n  Fresh process with the app's environment (median / min ms)   import      1st request  2nd request")
    for result in requests.values():
        cells = "  ".join(
            f"{result[p]['median_ms']:>6} /{result[p]['min_ms']:>6}" for p in ("import", "first", "second")
        )
        print(f"    GET {result['path'].split('?')[0]:<50} {cells}")
        print(
            f"      loaded at import: {result['heavy_modules_at_import'] or 'none'}; "
            f"after the requests: {result['heavy_modules_after_requests'] or 'none'}"
        )
    print("\n  The first request builds the composition root (boto3 session and clients, PynamoDB models;")
    print("  Stripe's SDK only for routes that use it, here finance); its network calls go to moto and")
    print("  the emulator on loopback.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="fresh interpreters per import measurement")
    parser.add_argument("--request-runs", type=int, default=3, help="fresh processes per route")
    args = parser.parse_args()
    imports = measure_imports(args.runs)
    audit = audit_import()
    console = measure_console_imports(args.runs)
    requests = measure_first_requests(args.request_runs)
    report(imports, audit, requests, args.runs, console)
    problems = violations(audit, console)
    measured = {"imports": imports, "import_audit": audit, "console_imports": console, "first_requests": requests}
    print(json.dumps({**measured, "violations": problems}))
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
