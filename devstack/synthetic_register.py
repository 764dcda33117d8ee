"""A synthetic holder register: FICTITIOUS certificates, for the local stack, tests and benchmarks.

Every reference starts 'SYN' so no row can be mistaken for, or collide with, a real certificate.
`python -m devstack.synthetic_register N > file.csv` writes N rows after the demo holders.
"""

from __future__ import annotations

import csv
import random
import sys
from typing import IO, Iterator

from chalicelib.domain.register import REGISTER_COLUMNS

# The holders `make run` prints, one per case a tester needs.
DEMO_HOLDERS = {
    "paid": ("SYN/100001", "firearm", "in force", "2029-03-31", "N1 9AL", ""),
    "free (register flag)": ("SYN/100002", "shotgun", "in force", "2028-06-30", "SE15 4QP", "yes"),
    "free (free-kit area E1 6)": ("SYN/100003", "both", "in force", "2028-09-30", "E1 6AN", ""),
    "expired": ("SYN/100004", "firearm", "expired", "2025-01-31", "NW3 2QG", ""),
    "revoked": ("SYN/100005", "shotgun", "revoked", "2029-01-31", "SW9 8QH", ""),
}
# Free-kit areas the local stack configures (one sector, one district).
LOCAL_FREE_KIT_AREAS = "E1 6,N17"

_OUTWARD = ["N1", "N7", "N17", "E1", "E8", "E17", "SE1", "SE15", "SW2", "SW9", "W3", "W12", "NW3", "NW10"]
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters an inward code may use
_STATUSES = ["in force"] * 17 + ["expired", "revoked", "surrendered"]


def synthetic_rows(count: int, seed: int = 2017) -> Iterator[tuple[str, ...]]:
    rng = random.Random(seed)
    for number in range(count):
        unit = "".join(rng.choice(_INWARD_LETTERS) for _ in range(2))
        postcode = f"{rng.choice(_OUTWARD)} {rng.randint(1, 9)}{unit}"
        yield (
            f"SYN/{200000 + number}",
            rng.choice(["firearm", "shotgun", "both"]),
            rng.choice(_STATUSES),
            f"{rng.randint(2026, 2031)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            postcode,
            "yes" if rng.random() < 0.05 else "",
        )


def write_register(out: IO[str], extra_rows: int) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTER_COLUMNS)
    writer.writerows(DEMO_HOLDERS.values())
    writer.writerows(synthetic_rows(extra_rows))


if __name__ == "__main__":
    write_register(sys.stdout, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
