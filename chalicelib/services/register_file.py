"""Reading the licensing system's CSV export, line by line, with a line-numbered reason for
everything wrong with it: bytes that are not UTF-8, another encoding, an over-long line or field,
a header without the register's columns, a row with too few or too many fields.

Nothing is held but the line being read: a file is read this way twice, once to check it and once
to write it (chalicelib.services.register)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Generator, Iterator

from ..domain.register import REGISTER_COLUMNS

MAX_LINE_BYTES = 4096  # a register row is under 100 bytes; anything near this is not one
MAX_FIELD_CHARS = 1024  # a quote left open makes one field of many lines: caught at this length
UTF8_BOM = b"\xef\xbb\xbf"
EXPORT_AS_UTF8 = "export it again as UTF-8 (in Excel: Save As, 'CSV UTF-8 (Comma delimited)')"


@dataclass(frozen=True)
class Problem:
    """Why the file cannot be imported; `line` is None when it is about the whole file."""

    line: int | None
    reason: str


@dataclass(frozen=True)
class ExportRow:
    line: int  # the physical line the row starts on
    fields: dict[str, str]  # the register's columns only (other columns are ignored)


@dataclass(frozen=True)
class Header:
    ignored: tuple[str, ...]  # named columns that are not the register's


class Unreadable(Exception):
    """The file is not text in UTF-8 at all (UTF-16, or binary): one problem for the whole file."""


class _Lines:
    """The file's lines, decoded as strict UTF-8 (a BOM allowed at the start), for csv.reader;
    a line that cannot be decoded, or is too long, is recorded as a problem and read as empty."""

    def __init__(self, handle: BinaryIO, fingerprint: "hashlib._Hash"):
        self._handle, self._fingerprint = handle, fingerprint
        self.number = 0
        self.problems: list[Problem] = []
        self.unusable: set[int] = set()  # lines already reported, whose rows are not checked again

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        raw = self._read_line()
        if not raw:
            raise StopIteration
        self.number += 1
        if self.number == 1:
            raw = self._first(raw)
        if b"\x00" in raw:
            raise Unreadable(
                f"line {self.number} holds NUL bytes: the file looks UTF-16 or binary, not UTF-8: {EXPORT_AS_UTF8}"
            )
        if len(raw) > MAX_LINE_BYTES:
            return self._unusable(f"the line is longer than {MAX_LINE_BYTES:,} bytes, which no register row is")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._unusable(
                f"byte 0x{raw[exc.start]:02X} at position {exc.start + 1} is not UTF-8: {EXPORT_AS_UTF8}"
            )

    def _read_line(self) -> bytes:
        """One line, but never more than MAX_LINE_BYTES + 1 of it in memory: the rest of an
        over-long line is read on and dropped."""
        raw = self._handle.readline(MAX_LINE_BYTES + 1)
        self._fingerprint.update(raw)
        rest = raw
        while len(rest) > MAX_LINE_BYTES and not rest.endswith(b"\n"):
            rest = self._handle.readline(MAX_LINE_BYTES + 1)
            self._fingerprint.update(rest)
        return raw

    def _first(self, raw: bytes) -> bytes:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise Unreadable(f"the file is UTF-16, not UTF-8: {EXPORT_AS_UTF8}")
        return raw.removeprefix(UTF8_BOM)

    def _unusable(self, reason: str) -> str:
        self.problems.append(Problem(self.number, reason))
        self.unusable.add(self.number)
        return "\n"

    def take_problems(self) -> list[Problem]:
        taken, self.problems = self.problems, []
        return taken


def read_export(handle: BinaryIO, fingerprint: "hashlib._Hash | None" = None) -> Iterator[Header | ExportRow | Problem]:
    """The header (or its problems, and nothing more), then each row or problem in line order.
    `fingerprint` is fed every byte read, so two readings can be shown to have read the same file."""
    lines = _Lines(handle, fingerprint or hashlib.sha256())
    reader = csv.reader(lines, strict=True)
    try:
        header = yield from _header(reader, lines)
        if header is not None:
            yield from _rows(reader, lines, header)
    except Unreadable as exc:
        yield Problem(None, str(exc))


def _header(reader: Iterator[list[str]], lines: _Lines) -> Generator[Header | Problem, None, list[str] | None]:
    try:
        names = [name.strip().lower() for name in _next_row(reader)]
    except StopIteration:
        yield Problem(None, "the file is empty")
        return None
    except csv.Error as exc:
        yield Problem(1, f"the header cannot be read: {_csv_reason(exc)}")
        return None
    if 1 in lines.unusable:
        yield from lines.take_problems()
        return None
    problems = _header_problems(names)
    yield from problems
    if problems:
        return None
    yield Header(tuple(name for name in names if name not in REGISTER_COLUMNS))
    return names


def _header_problems(names: list[str]) -> list[Problem]:
    problems = []
    missing = [column for column in REGISTER_COLUMNS if column not in names]
    if missing:
        problems.append(Problem(1, "the file lacks the columns: " + ", ".join(missing)))
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        problems.append(Problem(1, "the header names a column twice: " + ", ".join(repeated)))
    unnamed = [str(position) for position, name in enumerate(names, start=1) if not name]
    if unnamed:
        problems.append(Problem(1, "the header leaves columns without a name: column " + ", ".join(unnamed)))
    return problems


def _rows(reader: Iterator[list[str]], lines: _Lines, header: list[str]) -> Iterator[ExportRow | Problem]:
    while True:
        start = lines.number + 1
        try:
            fields = _next_row(reader)
        except StopIteration:
            yield from lines.take_problems()
            return
        except csv.Error as exc:
            yield from lines.take_problems()
            yield Problem(start, _csv_reason(exc))
            continue
        yield from lines.take_problems()
        if not fields or start in lines.unusable:
            continue  # a blank line, or one reported already
        if len(fields) != len(header):
            yield Problem(start, f"{len(fields)} fields where the header has {len(header)} (a comma missing or extra?)")
            continue
        yield ExportRow(
            start, {name: value for name, value in zip(header, fields, strict=True) if name in REGISTER_COLUMNS}
        )


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field is longer than {MAX_FIELD_CHARS:,} characters (a quote left open?)"
    if "unexpected end of data" in text:
        return "a quote is left open: the file ends inside a quoted field"
    if "expected after" in text or "new-line character" in text:
        return f"the quoting is broken ({text})"
    return f"not CSV: {text}"


def _next_row(reader: Iterator[list[str]]) -> list[str]:
    """The next row, read under this module's field size limit. The limit is the whole process's,
    so it is set for each row and put back, never left set while the caller has control."""
    before = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        return next(reader)
    finally:
        csv.field_size_limit(before)
