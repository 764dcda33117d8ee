"""Importing the licensing system's register: all or nothing.

An import reads the file twice and holds neither reading. The first checks every line and keeps
only compact digests (register_digests), then compares them with the live register: what the file
would add, remove and change. Nothing has changed yet, and nothing does if any line is wrong, if
the file has no rows, or if it would remove more of the register than the operator allows. The
second reading writes the rows as a new generation, and one conditional write makes that
generation live; the one it replaces is kept for a rollback, and older ones are deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable, Iterator

from ..domain.errors import ExportChanged, InvalidInput, RegisterChanged
from ..domain.references import ReferenceRules
from ..domain.register import (
    RegisterChange,
    RegisterEntry,
    RegisterKeys,
    RegisterState,
    import_refusal,
    parse_register_row,
)
from ..ports import Register
from .register_digests import ImportDigests
from .register_file import ExportRow, Header, Problem, read_export

MAX_KEPT = 200  # problems (and exact repeats) kept to report; the rest are counted


@dataclass
class ExportCheck:
    """The first reading: what is wrong with the file, if anything."""

    problems: list[Problem] = field(default_factory=list)  # the first MAX_KEPT, by line
    problem_count: int = 0
    rows: int = 0  # rows that passed, repeats included
    repeats: list[tuple[int, int]] = field(default_factory=list)  # (line, the earlier line it repeats exactly)
    repeat_count: int = 0
    ignored_columns: tuple[str, ...] = ()
    fingerprint: bytes = b""  # SHA-256 of the bytes read

    @property
    def passed(self) -> bool:
        return self.problem_count == 0

    def add_problem(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_KEPT:
            self.problems.append(problem)


@dataclass(frozen=True)
class ImportPlan:
    """What the file would do to the register as it was read, and whether it may."""

    state: RegisterState
    change: RegisterChange
    refusal: str | None


@dataclass(frozen=True)
class ImportOutcome:
    state: RegisterState  # after the switch
    written: int
    deleted: dict[int, int]  # generation -> entries deleted with it


OpenExport = Callable[[], BinaryIO]


class RegisterImport:
    """One import of one file: `check`, then `plan`, then `carry_out` (a context manager, which
    removes its working files however it ends)."""

    def __init__(self, open_export: OpenExport, register: Register, keys: RegisterKeys, rules: ReferenceRules):
        self._open, self._register, self._keys, self._rules = open_export, register, keys, rules
        self._digests = ImportDigests()
        self._check: ExportCheck | None = None

    def __enter__(self) -> "RegisterImport":
        return self

    def __exit__(self, *_exc: object) -> None:
        self._digests.close()

    def check(self) -> ExportCheck:
        """The first reading: every line checked, each good row's digests kept."""
        check = ExportCheck()
        fingerprint = hashlib.sha256()
        with self._open() as handle:
            for item in read_export(handle, fingerprint):
                self._take(item, check)
        check.fingerprint = fingerprint.digest()
        self._check_repeats(check)
        check.problems.sort(key=lambda problem: problem.line or 0)
        self._check = check
        return check

    def plan(self, max_removal_percent: int, allow_shrink: bool = False) -> ImportPlan:
        """The checked file against the live register (read in full, into the digests)."""
        check = self._checked()
        state = self._register.state()
        if check.rows == 0:
            change = RegisterChange(added=0, removed=state.live_entries, changed=0, unchanged=0)
        else:
            if state.live is not None:
                for entry in self._register.entries(state.live):
                    self._digests.add_live(entry)
            change = self._digests.change()
        return ImportPlan(state, change, import_refusal(change, max_removal_percent, allow_shrink))

    def carry_out(self, plan: ImportPlan, now: datetime) -> ImportOutcome:
        """The second reading, written as a new generation; then the switch, then the clean-up.
        If anything stops it before the switch, what it wrote is deleted and the live register
        is as it was. ExportChanged if the file is not the one checked; RegisterChanged if the
        register moved since the plan (another import, a rollback or a prune)."""
        check = self._checked()
        assert check.passed and plan.refusal is None and not plan.change.is_nothing, "carry out only a plan that may"
        generation = self._register.start_generation()
        try:
            written = self._register.save_all(generation, self._entries_again(check))
            if written != plan.change.entries_after:
                raise ExportChanged()
            state = self._switch(generation, plan.state, written, now)
        except BaseException:
            self._abandon(generation)
            raise
        return ImportOutcome(state, written, delete_stale(self._register, through=generation))

    def _switch(self, generation: int, expected: RegisterState, written: int, now: datetime) -> RegisterState:
        try:
            return self._register.switch(generation, expected, written, now)
        except RegisterChanged:
            # A retried request whose first attempt switched is refused by its own condition.
            state = self._register.state()
            if state.live != generation:
                raise
            return state

    def _abandon(self, generation: int) -> None:
        """Delete what this import wrote, unless it is live or previous after all. Best effort:
        if this fails too, the generation stays listed and the next import or prune deletes it."""
        with contextlib.suppress(Exception):
            state = self._register.state()
            if generation not in (state.live, state.previous):
                self._register.delete_generation(generation)

    def _take(self, item: Header | ExportRow | Problem, check: ExportCheck) -> None:
        if isinstance(item, Problem):
            check.add_problem(item)
        elif isinstance(item, Header):
            check.ignored_columns = item.ignored
        else:
            entry = self._entry_or_problem(item, check)
            if entry is not None:
                self._digests.add_row(item.line, entry)
                check.rows += 1

    def _entry_or_problem(self, row: ExportRow, check: ExportCheck) -> RegisterEntry | None:
        try:
            return parse_register_row(row.fields, self._rules).to_entry(self._keys)
        except InvalidInput as exc:
            check.add_problem(Problem(row.line, "; ".join(f"{col}: {msg}" for col, msg in exc.errors.items())))
            return None

    def _check_repeats(self, check: ExportCheck) -> None:
        """Rows for one certificate that disagree are a problem, each named with the first row;
        exact repeats are not (the certificate is written once) but are reported."""
        for lines, same in self._digests.repeats():
            first, *later = lines
            for line in later:
                if same:
                    check.repeat_count += 1
                    if len(check.repeats) < MAX_KEPT:
                        check.repeats.append((line, first))
                else:
                    check.add_problem(Problem(line, f"the same certificate as line {first}, with different details"))

    def _entries_again(self, check: ExportCheck) -> Iterator[RegisterEntry]:
        """The second reading: each certificate's first row, as checked. A problem, or bytes
        other than the first reading's, mean the file changed in between: ExportChanged."""
        skipped = self._digests.later_repeats()
        next_skip = next(skipped, None)
        fingerprint = hashlib.sha256()
        with self._open() as handle:
            for item in read_export(handle, fingerprint):
                if isinstance(item, Problem):
                    raise ExportChanged()
                if isinstance(item, Header):
                    continue
                while next_skip is not None and next_skip < item.line:
                    next_skip = next(skipped, None)
                if item.line == next_skip:
                    continue
                yield parse_register_row(item.fields, self._rules).to_entry(self._keys)
        if fingerprint.digest() != check.fingerprint:
            raise ExportChanged()

    def _checked(self) -> ExportCheck:
        if self._check is None:
            raise RuntimeError("check the file first")
        return self._check


def delete_stale(register: Register, through: int) -> dict[int, int]:
    """Delete every generation numbered up to `through` that is neither live nor previous;
    idempotent (a generation is forgotten only once its entries are gone)."""
    return {generation: register.delete_generation(generation) for generation in register.state().stale(through)}


def prune_register(register: Register) -> dict[int, int]:
    """What a crashed or abandoned import left: deleted. Taking a generation number first fences
    off any import still writing (it can no longer switch), so its generation can go too."""
    return delete_stale(register, through=register.start_generation())


def roll_back_register(register: Register, now: datetime) -> RegisterState:
    """The previous generation live again, in one write (NothingToRollBack if there is none)."""
    return register.roll_back(register.state(), now)
