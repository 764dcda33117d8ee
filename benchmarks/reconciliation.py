"""Benchmark: reconcile N orders against N Stripe balance transactions through the finance CLI,
reporting rows per second and the exporter's peak memory, and proving no table scan was made.
Orders arrive at PER_DAY a day, so a bigger N is a longer period: peak memory should not grow.

    make bench-finance     # or: .venv/bin/python benchmarks/reconciliation.py --orders 100000

moto (AWS) and the Stripe emulator run in this process; the export runs as the operator runs
it, `python -m ops finance export`, in a child process whose peak RSS is read when it exits.
Orders are written straight into the table and charges seeded straight into the emulator: the
benchmark measures the reconciliation, not the loading.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import OPS_CHILD  # noqa: E402
from benchmarks.register_import import free_port  # noqa: E402
from chalicelib.adapters.dynamodb import Tables, build_models  # noqa: E402
from chalicelib.adapters.dynamodb_orders import order_record  # noqa: E402
from chalicelib.adapters.kms_fields import PersonalFields  # noqa: E402
from chalicelib.domain.changes import Source  # noqa: E402
from chalicelib.domain.delivery import DeliveryDetails  # noqa: E402
from chalicelib.domain.eligibility import Eligibility, EligibilityReason  # noqa: E402
from chalicelib.domain.money import Money  # noqa: E402
from chalicelib.domain.lifecycle import accept_payment, place_order, release  # noqa: E402
from chalicelib.domain.references import new_order_reference  # noqa: E402
from chalicelib.domain.register import RegisterKeys  # noqa: E402
from devstack.aws import create_resources  # noqa: E402
from devstack.stripe_emulator import StripeEmulator  # noqa: E402

REGION = "eu-west-2"
START = date(2026, 10, 1)
PER_DAY = 10_000  # a busy campaign day; a longer period means more days, not bigger ones
DELIVERY = DeliveryDetails("Benchmark Person", "1 Load Street", "", "London", "N1 9AL", "")


def load(orders: int, tables: Tables, emulator: StripeEmulator, key_id: str) -> None:
    """Paid, released orders, PER_DAY a day from START, each with its Stripe charge, their
    personal fields sealed as the app seals them."""
    model = build_models(tables).orders
    kms = boto3.session.Session(region_name=tables.region).client("kms", endpoint_url=tables.host)
    fields = PersonalFields(kms, key_id)
    recipient_key = RegisterKeys(b"benchmark register key, 32 bytes or more").recipient_key
    start = datetime(START.year, START.month, START.day, tzinfo=timezone.utc)
    times = [start + timedelta(seconds=number * 86400 // PER_DAY) for number in range(orders)]
    references = [new_order_reference() for _ in range(orders)]
    seeds = [(reference, 895, "gbp", int(at.timestamp())) for reference, at in zip(references, times, strict=True)]
    intents = emulator.seed_paid_charges(seeds)
    eligibility = Eligibility(Money(895), EligibilityReason.STANDARD_PRICE)
    with model.batch_write() as batch:
        for number, (reference, at, intent) in enumerate(zip(references, times, intents, strict=True)):
            order = place_order(reference, f"cert-{number}", eligibility, DELIVERY, at).order
            paid = release(accept_payment(order, Money(895), intent, Source("stripe", "seed"), at).order, at).order
            batch.save(order_record(model, paid, fields, recipient_key=recipient_key))


def export(env: dict[str, str], out: Path, orders: int) -> tuple[float, int]:
    """The operator's command in a child process (BENCH_PROFILE=file runs it under cProfile)."""
    days = -(-orders // PER_DAY)
    period = ["--from", START.isoformat(), "--to", (START + timedelta(days=days)).isoformat()]
    hwm = out.with_suffix(".hwm")
    if os.environ.get("BENCH_PROFILE"):
        command = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], "-m", "ops"]
    else:
        command = [sys.executable, "-c", OPS_CHILD]
    command += ["finance", "export", *period, "--out", str(out), "--quiet"]
    started = time.perf_counter()
    subprocess.run(command, env={**env, "BENCH_HWM_FILE": str(hwm)}, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    return elapsed, int(hwm.read_text()) // 1024 if hwm.exists() else -1


def dynamodb_operations(moto_url: str) -> set[str]:
    recording = requests.get(f"{moto_url}/moto-api/recorder/download-recording", timeout=60).text
    operations = set()
    for line in recording.splitlines():
        target = json.loads(line).get("headers", {}).get("X-Amz-Target", "")
        if target.startswith("DynamoDB"):
            operations.add(target.split(".")[-1])
    return operations


def run(orders: int) -> dict:
    from moto.server import ThreadedMotoServer

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "MOTO_ENABLE_RECORDING": "",
            "MOTO_RECORDER_FILEPATH": str(Path(tempfile.mkdtemp(prefix="moto-")) / "recording"),
        }
    )
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{port}"
    emulator = StripeEmulator(port=0)
    emulator.start()
    try:
        resources = create_resources("bench", moto_url, REGION)
        tables = Tables(
            resources["REGISTER_TABLE"], resources["ORDERS_TABLE"], resources["CLAIMS_TABLE"], REGION, moto_url
        )
        load(orders, tables, emulator, resources["PERSONAL_DATA_KEY_ID"])
        env = {
            **os.environ,
            **resources,
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_REGION": REGION,
            "REGISTER_KEY": secrets.token_urlsafe(32),
            "JOURNEY_KEY": secrets.token_urlsafe(32),
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "STRIPE_API_BASE": emulator.base_url,
            "APP_BASE_URL": "http://127.0.0.1",
        }
        requests.post(f"{moto_url}/moto-api/recorder/start-recording", timeout=10)
        with tempfile.TemporaryDirectory() as folder:
            seconds, peak_mib = export(env, Path(folder) / "reconciliation.csv", orders)
            rows = sum(1 for _ in (Path(folder) / "reconciliation.csv").open(encoding="utf-8-sig"))
        operations = dynamodb_operations(moto_url)
    finally:
        emulator.stop()
        moto.stop()
    return {
        "orders": orders,
        "balance_transactions": orders,
        "csv_lines": rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(2 * orders / seconds),
        "exporter_peak_rss_mib": peak_mib,
        "dynamodb_operations": sorted(operations),
        "scanned": "Scan" in operations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    result = run(parser.parse_args().orders)
    print(json.dumps(result))
    if result["scanned"]:
        raise SystemExit("the export scanned a table")


if __name__ == "__main__":
    main()
