"""Anti-automation for the certificate check: failed attempts counted per certificate (keyed
hash) and per client address (keyed hash), in fixed windows, so counters are plain atomic
increments that cannot race. A locked-out attempt is refused exactly like any other refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Limits:
    """Failures allowed before a lock: in a 15-minute window (the lock lasts the rest of that
    window and the next), and in a UTC day (the back-off: locked for the rest of the day)."""

    per_window: int
    per_day: int


REFERENCE_LIMITS = Limits(per_window=5, per_day=15)
ADDRESS_LIMITS = Limits(per_window=20, per_day=100)


@dataclass(frozen=True)
class Counters:
    """The three counters that decide a lock for one subject (a certificate or an address)."""

    subject: str
    limits: Limits

    def keys(self, now: datetime) -> tuple[str, str, str]:
        window = _window_number(now)
        return (f"{self.subject}:w{window}", f"{self.subject}:w{window - 1}", f"{self.subject}:d{now.date()}")

    def locked(self, failures: dict[str, int], now: datetime) -> bool:
        current, previous, day = (failures.get(key, 0) for key in self.keys(now))
        return max(current, previous) >= self.limits.per_window or day >= self.limits.per_day

    def to_increment(self, now: datetime) -> list[tuple[str, datetime]]:
        """(key, expiry) of the counters a failure adds one to: this window's and today's."""
        current, _previous, day = self.keys(now)
        window_end = _window_start(now) + WINDOW
        day_end = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
        # Kept one window / one day past their use, then expired by TTL and the sweep.
        return [(current, window_end + 2 * WINDOW), (day, day_end + timedelta(days=1))]


def _window_number(now: datetime) -> int:
    return int(now.timestamp() // WINDOW.total_seconds())


def _window_start(now: datetime) -> datetime:
    return datetime.fromtimestamp(_window_number(now) * WINDOW.total_seconds(), timezone.utc)
