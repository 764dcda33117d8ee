"""An import's working set: compact digests of the file's rows and of the live register, kept in a
temporary SQLite file rather than in memory, so that a file of a million rows costs no more memory
than one of a thousand.

A row costs 16 bytes of its reference key's digest, 8 of its details' (domain.register.details_digest)
and its line number: about 50 bytes on disk with SQLite's overhead, 60 MB for 1.1 million rows,
with its index. Memory is SQLite's page cache (CACHE_KIB) and one batch of rows. Nothing personal
is in the file: the digests are of HMACs already.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterator

from ..domain.register import RegisterChange, RegisterEntry, details_digest

BATCH = 10_000  # rows held in memory before they go to SQLite
CACHE_KIB = 8192
SAMPLE = 10  # line numbers kept of what is added and what is changed


def reference_digest(reference_key: str) -> bytes:
    """16 bytes for a reference key: a chance collision among 2 million is about 1 in 10^26."""
    return hashlib.blake2b(reference_key.encode(), digest_size=16).digest()


class ImportDigests:
    """The file's rows (`add_row`), then the live register's entries (`add_live`), compared."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="tracekit-register-")
        self._db = sqlite3.connect(Path(self._directory.name) / "digests.sqlite")
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}", "temp_store = FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE rows (ref BLOB NOT NULL, details BLOB NOT NULL, line INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE live (ref BLOB PRIMARY KEY, details BLOB NOT NULL) WITHOUT ROWID")
        self._rows: list[tuple[bytes, bytes, int]] = []
        self._live: list[tuple[bytes, bytes]] = []
        self._indexed = False

    def close(self) -> None:
        self._db.close()
        self._directory.cleanup()

    def add_row(self, line: int, entry: RegisterEntry) -> None:
        self._rows.append((reference_digest(entry.reference_key), details_digest(entry), line))
        if len(self._rows) >= BATCH:
            self._flush_rows()

    def add_live(self, entry: RegisterEntry) -> None:
        self._live.append((reference_digest(entry.reference_key), details_digest(entry)))
        if len(self._live) >= BATCH:
            self._flush_live()

    def repeats(self) -> Iterator[tuple[list[int], bool]]:
        """Each reference given on more than one row: (its lines, in order; whether every row
        says the same), in the order of their first lines."""
        self._index()
        groups = self._db.execute(
            "SELECT group_concat(line), count(DISTINCT details) FROM rows GROUP BY ref HAVING count(*) > 1"
            " ORDER BY min(line)"
        )
        for lines, versions in groups:
            yield sorted(int(line) for line in lines.split(",")), versions == 1

    def later_repeats(self) -> Iterator[int]:
        """The lines that repeat an earlier row's reference, in order: the ones not written."""
        self._index()
        query = "SELECT r.line FROM rows r JOIN file f ON f.ref = r.ref WHERE r.line != f.line ORDER BY r.line"
        for (line,) in self._db.execute(query):
            yield line

    def change(self) -> RegisterChange:
        """What the file (its first row for each reference) does to the live entries added."""
        self._index()
        self._flush_live()

        def one(query: str) -> int:
            return int(self._db.execute(query).fetchone()[0])

        def lines(query: str) -> tuple[int, ...]:
            return tuple(line for (line,) in self._db.execute(query + f" ORDER BY f.line LIMIT {SAMPLE}"))

        added = "FROM file f WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.ref = f.ref)"
        changed = "FROM file f JOIN live l ON l.ref = f.ref WHERE l.details != f.details"
        return RegisterChange(
            added=one(f"SELECT count(*) {added}"),
            removed=one("SELECT count(*) FROM live l WHERE NOT EXISTS (SELECT 1 FROM file f WHERE f.ref = l.ref)"),
            changed=one(f"SELECT count(*) {changed}"),
            unchanged=one("SELECT count(*) FROM file f JOIN live l ON l.ref = f.ref WHERE l.details = f.details"),
            added_lines=lines(f"SELECT f.line {added}"),
            changed_lines=lines(f"SELECT f.line {changed}"),
        )

    def _index(self) -> None:
        """Once every row is in: the rows by reference, and the file's first row of each."""
        if self._indexed:
            return
        self._flush_rows()
        self._db.execute("CREATE INDEX rows_by_ref ON rows (ref, line)")
        # SQLite takes the other columns of a min() aggregate from the row holding the minimum.
        self._db.execute("CREATE TABLE file AS SELECT ref, min(line) AS line, details FROM rows GROUP BY ref")
        self._db.execute("CREATE UNIQUE INDEX file_by_ref ON file (ref)")
        self._indexed = True

    def _flush_rows(self) -> None:
        self._db.executemany("INSERT INTO rows VALUES (?, ?, ?)", self._rows)
        self._rows.clear()

    def _flush_live(self) -> None:
        self._db.executemany("INSERT OR REPLACE INTO live VALUES (?, ?)", self._live)
        self._live.clear()
