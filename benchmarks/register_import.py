"""Benchmark: the register import through the operator CLI, exactly as an operator runs it, into
moto over HTTP. Each `ops register import` runs in a child process, which reports its own peak
memory (VmHWM: getrusage's ru_maxrss for a child would include this process's size at fork, and
this process holds moto's tables).

    make bench            # or: .venv/bin/python benchmarks/register_import.py

What it measures, in order, against one moto server:
1. `--rows` (30,000) synthetic rows into an empty register: the first import (seconds, peak RSS).
2. The same number again with 1% of rows changed: a second generation, the first kept.
3. Again with another 1% changed: a third generation; the first is deleted after the switch.
4. `--big-rows` (1,100,000; about 50 MB) checked with --dry-run against the live register from
   step 3: the whole first reading and the comparison, where an import's memory peaks (the second
   reading only streams rows into 25-item batches); nothing written.
5. The same big file with one byte that is not UTF-8 near its end: refused (peak RSS).
A full import of the big file is not run: against moto it would take the better part of an hour
and moto's own memory (in this process) would pass several GB.

Each run starts its own moto server on a free loopback port; nothing else need be running.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
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

from benchmarks.peak_memory import OPS_CHILD  # noqa: E402
from devstack.aws import create_resources  # noqa: E402
from devstack.synthetic_register import demo_holders, synthetic_rows  # noqa: E402
from chalicelib.domain.register import REGISTER_COLUMNS  # noqa: E402

REGION = "eu-west-2"
LIMIT_MIB = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_file(path: Path, rows: int, changed_every: int = 0, bad_byte_at: int = 0) -> Path:
    """The demo holders and `rows - 5` synthetic ones; every `changed_every`-th row's status
    changed; a 0xFF byte in row `bad_byte_at`."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REGISTER_COLUMNS)
        writer.writerows(demo_holders().values())
        for number, row in enumerate(synthetic_rows(rows - 5), start=6):
            if changed_every and number % changed_every == 0:
                row = (*row[:2], "expired" if row[2] != "expired" else "in force", *row[3:])
            writer.writerow(row)
    if bad_byte_at:
        with path.open("r+b") as handle:
            handle.seek(int(path.stat().st_size * bad_byte_at / rows))
            handle.readline()  # to the start of the next row
            handle.write(b"\xff")
    return path


def run_import(env: dict, path: Path, *options: str) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", OPS_CHILD, "register", "import", "--quiet", *options, str(path)],
            env={**env, "BENCH_HWM_FILE": hwm.name},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        peak_kib = int(Path(hwm.name).read_text() or 0)
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "exit": result.returncode,
        "said": (result.stdout + result.stderr).strip().splitlines()[-1:],
    }


def run(rows: int, big_rows: int) -> list[dict]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    results = []
    try:
        env = {
            **os.environ,
            **create_resources("bench", endpoint, REGION),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "REGISTER_KEY": secrets.token_urlsafe(32),
        }
        with tempfile.TemporaryDirectory() as directory:
            files = Path(directory)
            steps = [
                ("first import", write_file(files / "1.csv", rows), ["--yes"]),
                ("second, 1% changed", write_file(files / "2.csv", rows, changed_every=100), ["--yes"]),
                (
                    "third, 1% changed, deletes the first",
                    write_file(files / "3.csv", rows, changed_every=97),
                    ["--yes"],
                ),
            ]
            if big_rows:
                big = write_file(files / "big.csv", big_rows)
                bad = write_file(files / "bad.csv", big_rows, bad_byte_at=big_rows * 10 // 11)
                steps += [
                    ("big file, --dry-run", big, ["--dry-run"]),
                    ("big file with a bad byte, refused", bad, ["--yes"]),
                ]
            for name, path, options in steps:
                result = {"step": name, "rows": _rows(path), "mb": round(path.stat().st_size / 1e6, 1)}
                result |= run_import(env, path, *options)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        server.stop()
    return results


def _rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--big-rows", type=int, default=1_100_000, help="0 to skip the big file")
    args = parser.parse_args()
    results = run(args.rows, args.big_rows)
    expected = [0, 0, 0, 0, 1][: len(results)]
    if [r["exit"] for r in results] != expected:
        raise SystemExit(f"exit statuses {[r['exit'] for r in results]}, expected {expected}")
    heavy = [r for r in results if r["peak_rss_mib"] >= LIMIT_MIB]
    if heavy:
        raise SystemExit(f"peak memory over {LIMIT_MIB} MiB: {heavy}")


if __name__ == "__main__":
    main()
