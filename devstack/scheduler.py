"""`chalice local` runs no scheduled handlers, so the local stack runs the same handler functions
on a timer itself, in-process, with the app's configuration."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import datetime, timezone

log = logging.getLogger("devstack.scheduler")


def scheduled_event() -> dict:
    """The shape EventBridge hands a scheduled Lambda (what Chalice's handler wrapper reads)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "region": os.environ.get("AWS_REGION", "eu-west-2"),
        "resources": [],
        "detail": {},
    }


class LocalScheduler:
    """Calls each named scheduled handler of app.py every `interval` seconds until stopped."""

    def __init__(self, env: dict[str, str], handler_names: tuple[str, ...], interval: float = 60.0):
        self._env, self._names, self._interval = env, handler_names, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)

    def start(self) -> None:
        os.environ.update(self._env)  # the handlers read the same configuration as the app process
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> None:
        import app as application

        for name in self._names:
            try:
                getattr(application, name)(scheduled_event(), None)
            except Exception as exc:  # noqa: BLE001 - a failed run is retried at the next tick, as in AWS
                log.error("scheduled %s failed: %s", name, type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()
