"""Benchmark: import 30,000 synthetic register rows into the local stack (moto over HTTP) through
the operator CLI, exactly as an operator would, and report rows per second.

    make bench            # or: .venv/bin/python benchmarks/register_import.py --rows 30000

Each run starts its own moto server on a free loopback port; nothing else need be running.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.aws import create_resources  # noqa: E402
from devstack.synthetic_register import write_register  # noqa: E402

REGION = "eu-west-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_items(endpoint: str, table: str) -> int:
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = dynamodb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def run(rows: int) -> dict:
    from moto.server import ThreadedMotoServer

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        resources = create_resources("bench", endpoint, REGION)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
            write_register(handle, rows - 5)  # the 5 demo holders plus the rest
        env = {
            **os.environ,
            **resources,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "REGISTER_KEY": secrets.token_urlsafe(32),
        }
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ops", "register", "import", "--quiet", handle.name],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        stored = count_items(endpoint, resources["REGISTER_TABLE"])
    finally:
        server.stop()
        Path(handle.name).unlink(missing_ok=True)
    return {"rows": rows, "stored": stored, "seconds": round(elapsed, 2), "rows_per_second": round(rows / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=30_000)
    result = run(parser.parse_args().rows)
    print(json.dumps(result))
    if result["stored"] != result["rows"]:
        raise SystemExit(f"only {result['stored']} of {result['rows']} rows were stored")


if __name__ == "__main__":
    main()
