"""Metrics as CloudWatch Embedded Metric Format: one JSON log line per report, which CloudWatch
turns into metrics an alarm can watch. No API call, no extra permission, nothing personal."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Callable, TextIO

from ..timeutil import utc_now

NAMESPACE = "tracekit"


class EmfMetrics:
    def __init__(
        self, stage: str, out: Callable[[], TextIO] = lambda: sys.stdout, clock: Callable[[], datetime] = utc_now
    ):
        self._stage = stage
        self._out = out
        self._clock = clock

    def report(self, values: dict[str, int], unit: str = "Count") -> None:
        document = {
            "_aws": {
                "Timestamp": int(self._clock().timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Stage"]],
                        "Metrics": [{"Name": name, "Unit": unit} for name in values],
                    }
                ],
            },
            "Stage": self._stage,
            **values,
        }
        stream = self._out()
        stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()
