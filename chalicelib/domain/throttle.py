"""Anti-automation for the certificate check: attempts counted per certificate (keyed hash) and per
client address (keyed hash), in fixed 15-minute windows and per UTC day.

An attempt is counted *before* it is evaluated: it reserves one place in each of its counters, on
condition that every one of them is still under its limit, all or nothing. Only an attempt whose
reservation is granted is evaluated at all, so however many arrive together, at most the limit are
evaluated per window and per day, for a certificate and for an address. A refused reservation adds
nothing, so a counter never passes its limit. A locked attempt is refused exactly like any other
refusal."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

WINDOW = timedelta(minutes=15)

# Every address that cannot be read as IPv4 or IPv6 (none at all, or garbage) shares this one key.
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Limits:
    """Attempts allowed: in a 15-minute window (once reached, the lock lasts the rest of that
    window and the whole of the next), and in a UTC day (locked for the rest of the day)."""

    per_window: int
    per_day: int


# Every attempt counts, the holder's right answer included (see docs/security.md#the-lockout):
# a holder who mistypes a few times and comes back to the check is well under 8 in 15 minutes.
REFERENCE_LIMITS = Limits(per_window=8, per_day=20)
# Households, offices and mobile networks share addresses (IPv4 behind NAT); these leave room for
# many holders on one address while still slowing one address trying many certificates.
ADDRESS_LIMITS = Limits(per_window=40, per_day=300)


@dataclass(frozen=True)
class Place:
    """One counter a reservation adds one to, on condition that it is under `limit` before."""

    key: str
    limit: int
    expires: datetime  # kept until then (TTL and the sweep), a window or a day past its use


@dataclass(frozen=True)
class Check:
    """A counter a reservation does not change, but which must be under `limit` (or absent)."""

    key: str
    limit: int


@dataclass(frozen=True)
class Reservation:
    """All or nothing: every place is taken and every check holds, or nothing changes."""

    places: tuple[Place, ...]
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Counters:
    """The counters that decide a lock for one subject (a certificate or an address)."""

    subject: str
    limits: Limits

    def keys(self, now: datetime) -> tuple[str, str, str]:
        """This window's, the previous window's and today's counter."""
        window = _window_number(now)
        return (f"{self.subject}:w{window}", f"{self.subject}:w{window - 1}", f"{self.subject}:d{now.date()}")

    def places(self, now: datetime) -> tuple[Place, Place]:
        current, _previous, day = self.keys(now)
        window_end = _window_start(now) + WINDOW
        day_end = datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)
        # A window's counter is read as the previous one during the next window, then it can go.
        return (
            Place(current, self.limits.per_window, window_end + 2 * WINDOW),
            Place(day, self.limits.per_day, day_end + timedelta(days=1)),
        )

    def check(self, now: datetime) -> Check:
        """A full previous window locks this one too, so a lock never lasts less than one window."""
        return Check(self.keys(now)[1], self.limits.per_window)


def reservation(subjects: Iterable[Counters], now: datetime) -> Reservation:
    """The reservation an attempt at `now` makes, for each of its subjects."""
    subjects = tuple(subjects)
    return Reservation(
        places=tuple(place for subject in subjects for place in subject.places(now)),
        checks=tuple(subject.check(now) for subject in subjects),
    )


def address_key(address: str | None) -> str:
    """What an address is counted under: IPv4 on the address itself, IPv6 on its /64 (one
    household's or one host's network: a holder's device may change the rest at will). An
    IPv4-mapped IPv6 address counts as its IPv4 address. Anything unreadable: UNKNOWN_ADDRESS."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _window_number(now: datetime) -> int:
    return int(now.timestamp() // WINDOW.total_seconds())


def _window_start(now: datetime) -> datetime:
    return datetime.fromtimestamp(_window_number(now) * WINDOW.total_seconds(), timezone.utc)
