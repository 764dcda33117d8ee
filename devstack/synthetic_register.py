"""A synthetic holder register: FICTITIOUS certificates, for the local stack, tests and benchmarks.

Every reference starts 'SYN' so no row can be mistaken for, or collide with, a real certificate.
`python -m devstack.synthetic_register N > file.csv` writes N rows after the demo holders.

Expiry dates are counted from the day the register is written (the local stack writes it afresh
at every start), so the demo holders are in force, or expired, on whatever day it runs.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, datetime, timedelta, timezone
from typing import IO, Iterator

from chalicelib.domain.register import REGISTER_COLUMNS

# The holders `make run` prints, one per case a tester needs: (reference, type, status, days from
# today to expiry, postcode, free-kit flag).
_DEMO = {
    "paid": ("SYN/100001", "firearm", "in force", 850, "N1 9AL", ""),
    "free (register flag)": ("SYN/100002", "shotgun", "in force", 580, "SE15 4QP", "yes"),
    "free (free-kit area E1 6)": ("SYN/100003", "both", "in force", 670, "E1 6AN", ""),
    "expired": ("SYN/100004", "firearm", "expired", -670, "NW3 2QG", ""),
    "revoked": ("SYN/100005", "shotgun", "revoked", 790, "SW9 8QH", ""),
    "already ordered (demo order)": ("SYN/100006", "firearm", "in force", 720, "N7 0BB", ""),
}
# The holder of the demo order the local stack places and pays at start (devstack.demo).
DEMO_ORDER_HOLDER = (_DEMO["already ordered (demo order)"][0], _DEMO["already ordered (demo order)"][4])


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def demo_holders(today: date | None = None) -> dict[str, tuple[str, ...]]:
    today = today or utc_today()
    return {
        case: (ref, kind, status, (today + timedelta(days=days)).isoformat(), postcode, free)
        for case, (ref, kind, status, days, postcode, free) in _DEMO.items()
    }


DEMO_HOLDERS = demo_holders()
# Free-kit areas the local stack configures (one sector, one district).
LOCAL_FREE_KIT_AREAS = "E1 6,N17"

_OUTWARD = ["N1", "N7", "N17", "E1", "E8", "E17", "SE1", "SE15", "SW2", "SW9", "W3", "W12", "NW3", "NW10"]
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters an inward code may use
_STATUSES = ["in force"] * 17 + ["expired", "revoked", "surrendered"]


def synthetic_rows(count: int, seed: int = 2017, today: date | None = None) -> Iterator[tuple[str, ...]]:
    """The same rows for the same seed and day: expiries from about a year ago to five years on."""
    rng, today = random.Random(seed), today or utc_today()
    for number in range(count):
        unit = "".join(rng.choice(_INWARD_LETTERS) for _ in range(2))
        postcode = f"{rng.choice(_OUTWARD)} {rng.randint(1, 9)}{unit}"
        yield (
            f"SYN/{200000 + number}",
            rng.choice(["firearm", "shotgun", "both"]),
            rng.choice(_STATUSES),
            (today + timedelta(days=rng.randint(-365, 1825))).isoformat(),
            postcode,
            "yes" if rng.random() < 0.05 else "",
        )


LOCAL_EXTRA_ROWS = 200  # what the local stack loads after the demo holders


def write_register(out: IO[str], extra_rows: int, today: date | None = None) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTER_COLUMNS)
    writer.writerows(demo_holders(today).values())
    writer.writerows(synthetic_rows(extra_rows, today=today))


if __name__ == "__main__":
    write_register(sys.stdout, int(sys.argv[1]) if len(sys.argv) > 1 else LOCAL_EXTRA_ROWS)
