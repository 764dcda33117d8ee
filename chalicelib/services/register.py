"""Importing the licensing system's register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..domain.errors import InvalidInput
from ..domain.references import ReferenceRules
from ..domain.register import RegisterKeys, parse_register_row
from ..ports import Register


@dataclass
class ImportReport:
    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def import_register(
    rows: Iterable[tuple[int, dict[str, str]]],
    register: Register,
    keys: RegisterKeys,
    rules: ReferenceRules,
    on_row: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Validate every row; write the good ones in batches; report the bad ones by line number.

    A row is one item, fully validated before it is written, so nothing is half-written; the
    items are deterministic, so importing the same file again changes nothing."""
    report = ImportReport()
    seen: dict[str, int] = {}

    def valid_entries():
        for line, row in rows:
            on_row()
            entry = _entry_or_report(line, row, keys, rules, seen, report)
            if entry is not None:
                yield entry

    report.written = register.save_all(valid_entries())
    return report


def _entry_or_report(line, row, keys, rules, seen, report):
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
