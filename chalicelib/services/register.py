"""Importing the licensing system's register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from ..domain.errors import InvalidInput
from ..domain.references import ReferenceRules
from ..domain.register import RegisterEntry, RegisterKeys, parse_register_row
from ..ports import Register


@dataclass
class ImportReport:
    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    removed: int = 0
    kept_stale: bool = False  # stale entries left because some rows were rejected


def import_register(
    rows: Iterable[tuple[int, dict[str, str]]],
    register: Register,
    keys: RegisterKeys,
    rules: ReferenceRules,
    on_row: Callable[[], None] = lambda: None,
    replace: bool = True,
) -> ImportReport:
    """Validate every row; write the good ones in batches; report the bad ones by line number.

    A row is one item, fully validated before it is written, so nothing is half-written; the
    items are deterministic, so importing the same file again changes nothing."""
    report = ImportReport()
    seen: dict[str, int] = {}

    def valid_entries() -> Iterator[RegisterEntry]:
        for line, row in rows:
            on_row()
            entry = _entry_or_report(line, row, keys, rules, seen, report)
            if entry is not None:
                yield entry

    report.written = register.save_all(valid_entries())
    if replace:
        _replace_wholesale(register, set(seen), report)
    return report


def _replace_wholesale(register: Register, imported: set[str], report: ImportReport) -> None:
    """The export is the whole truth: certificates it no longer lists (revoked, surrendered,
    cancelled and dropped) leave the register. Not when rows were rejected: a holder whose row
    was malformed this time must not lose the entry they had."""
    if report.rejected:
        report.kept_stale = True
        return
    report.removed = register.delete_all(key for key in list(register.all_keys()) if key not in imported)


def _entry_or_report(
    line: int,
    row: dict[str, str],
    keys: RegisterKeys,
    rules: ReferenceRules,
    seen: dict[str, int],
    report: ImportReport,
) -> RegisterEntry | None:
    try:
        entry = parse_register_row(row, rules).to_entry(keys)
    except InvalidInput as exc:
        report.rejected.append((line, "; ".join(f"{col}: {msg}" for col, msg in exc.errors.items())))
        return None
    if entry.reference_key in seen:
        report.rejected.append((line, f"certificate_reference: repeats line {seen[entry.reference_key]}"))
        return None
    seen[entry.reference_key] = line
    return entry
