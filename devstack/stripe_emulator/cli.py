"""The command line: ``python -m devstack.stripe_emulator --port 12111 --webhook-url URL``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Iterable

from devstack.stripe_emulator.constants import DEFAULT_WEBHOOK_SECRET, LOOPBACK_HOSTS
from devstack.stripe_emulator.emulator import StripeEmulator


def _parse_arguments(argv: Iterable[str] | None) -> argparse.Namespace:
    """Parse the command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.stripe_emulator",
        description="Run a local Stripe Checkout emulator for development.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        choices=sorted(LOOPBACK_HOSTS),
        help="loopback interface to bind (default 127.0.0.1)",
    )
    parser.add_argument("--port", type=int, default=12111, help="port to listen on (0 picks a free one)")
    parser.add_argument("--webhook-url", default=None, help="where to POST signed webhook events")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, help="signing secret (whsec_...)")
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> None:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = StripeEmulator(arguments.host, arguments.port, arguments.webhook_url, arguments.webhook_secret)
    # `docker stop` and process managers send SIGTERM; shut down as cleanly as for Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator.start()
    webhook_target = arguments.webhook_url or "none"
    print(f"Stripe emulator running at {emulator.base_url} (webhooks -> {webhook_target})", flush=True)
    print(f"Dashboard: {emulator.base_url}/_emulator", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
