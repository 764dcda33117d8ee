"""The machine's clock, read only by the composition root and the edge (everything else is given a
clock); the ISO 8601 format is the domain's (domain/times.py)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
