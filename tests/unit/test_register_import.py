"""The register import's rules, on the in-memory register: all or nothing, generations, rollback,
prune. The same import through the CLI into DynamoDB: tests/integration/test_register_import_cli.py."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from chalicelib.domain.errors import ExportChanged, InvalidInput, NothingToRollBack, RegisterChanged
from chalicelib.domain.references import ReferenceRules
from chalicelib.domain.register import REGISTER_COLUMNS, RegisterChange, import_refusal, parse_register_row
from chalicelib.services import RegisterImport, prune_register, roll_back_register
from tests.builders import NOW, fake_dependencies, register_row


def csv_bytes(rows, columns=REGISTER_COLUMNS) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def holders(count: int, start: int = 0, **changes):
    return [register_row(f"FA/{i:05d}", **changes) for i in range(start, start + count)]


class File:
    """A file the import opens twice; a test may change it between the two readings."""

    def __init__(self, content: bytes):
        self.content = content

    def __call__(self):
        return io.BytesIO(self.content)


def importing(deps, content: bytes) -> RegisterImport:
    return RegisterImport(File(content), deps.register, deps.keys, deps.settings.reference_rules)


def import_file(deps, content: bytes, allow_shrink: bool = False):
    with importing(deps, content) as job:
        check = job.check()
        assert check.passed, check.problems
        plan = job.plan(5, allow_shrink)
        assert plan.refusal is None, plan.refusal
        return job.carry_out(plan, deps.clock()) if not plan.change.is_nothing else None


def live_keys(deps) -> set[str]:
    return set(deps.register.entries_live)


def key(deps, reference: str) -> str:
    return deps.keys.reference_key(reference.replace("/", ""))


@pytest.fixture
def deps():
    return fake_dependencies()


def test_every_bad_line_is_reported_and_nothing_is_stored(deps):
    rows = [*holders(3), register_row("FA/00009", status="lapsed"), register_row("FA/00010", expiry_date="soon")]
    with importing(deps, csv_bytes(rows)) as job:
        check = job.check()
    assert not check.passed and check.problem_count == 2
    assert [(p.line, p.reason.split(":")[0]) for p in check.problems] == [(5, "status"), (6, "expiry_date")]
    assert deps.register.generations == {} and deps.register.state().live is None


def test_rows_for_one_certificate_that_disagree_are_refused_naming_both_lines(deps):
    rows = [register_row("FA/00001"), register_row("FA/00002"), register_row("fa 00001", postcode="E1 6AN")]
    with importing(deps, csv_bytes(rows)) as job:
        check = job.check()
    assert [(p.line, p.reason) for p in check.problems] == [
        (4, "the same certificate as line 2, with different details")
    ]


def test_an_exact_repeat_is_imported_once_and_reported(deps):
    rows = [register_row("FA/00001"), register_row("FA/00002"), register_row("fa 00001")]
    with importing(deps, csv_bytes(rows)) as job:
        check = job.check()
        assert check.passed and check.repeats == [(4, 2)] and check.repeat_count == 1
        plan = job.plan(5)
        assert plan.change == RegisterChange(added=2, removed=0, changed=0, unchanged=0, added_lines=(2, 3))
        assert job.carry_out(plan, NOW).written == 2
    assert live_keys(deps) == {key(deps, "FA/00001"), key(deps, "FA/00002")}


def test_the_plan_counts_what_is_added_removed_and_changed(deps):
    import_file(deps, csv_bytes(holders(100)))
    tomorrow = [*holders(98), register_row("FA/00099", status="revoked"), *holders(2, start=500)]  # one gone
    with importing(deps, csv_bytes(tomorrow)) as job:
        assert job.check().passed
        change = job.plan(5).change
    assert (change.added, change.removed, change.changed, change.unchanged) == (2, 1, 1, 98)
    assert change.added_lines == (101, 102) and change.changed_lines == (100,)


def test_an_import_becomes_live_in_one_switch_and_keeps_the_previous_generation(deps):
    first = import_file(deps, csv_bytes(holders(40)))
    second = import_file(deps, csv_bytes(holders(40, status="expired")))
    state = deps.register.state()
    assert (state.live, state.previous) == (second.state.live, first.state.live)
    assert {e.status.value for e in deps.register.entries_live.values()} == {"expired"}
    assert len(deps.register.generations[state.previous]) == 40


def test_generations_older_than_the_previous_are_deleted_after_the_switch(deps):
    outcomes = [import_file(deps, csv_bytes(holders(40, expiry_date=f"2030-01-0{day}"))) for day in (1, 2, 3)]
    assert outcomes[2].deleted == {outcomes[0].state.live: 40}
    assert set(deps.register.generations) == {outcomes[1].state.live, outcomes[2].state.live}


def test_importing_the_same_file_again_changes_nothing(deps):
    content = csv_bytes(holders(30))
    import_file(deps, content)
    before = (deps.register.state(), dict(deps.register.generations))
    assert import_file(deps, content) is None
    assert (deps.register.state(), dict(deps.register.generations)) == before


def test_a_rollback_restores_the_previous_generation_and_a_second_undoes_it(deps):
    import_file(deps, csv_bytes(holders(40)))
    import_file(deps, csv_bytes(holders(40, status="revoked")))
    deps.clock.advance(timedelta(minutes=5))
    restored = roll_back_register(deps.register, deps.clock())
    assert {e.status.value for e in deps.register.entries_live.values()} == {"in_force"}
    assert restored.live_since == deps.clock()
    roll_back_register(deps.register, deps.clock())
    assert {e.status.value for e in deps.register.entries_live.values()} == {"revoked"}


def test_there_is_nothing_to_roll_back_to_after_the_first_import(deps):
    import_file(deps, csv_bytes(holders(3)))
    with pytest.raises(NothingToRollBack):
        roll_back_register(deps.register, NOW)


def test_a_file_changed_between_check_and_write_switches_nothing_and_leaves_nothing(deps):
    import_file(deps, csv_bytes(holders(40)))
    before = deps.register.state()
    file = File(csv_bytes(holders(40, status="expired")))
    with RegisterImport(file, deps.register, deps.keys, deps.settings.reference_rules) as job:
        assert job.check().passed
        plan = job.plan(5)
        file.content = csv_bytes(holders(40, status="revoked"))  # same length, other bytes
        with pytest.raises(ExportChanged):
            job.carry_out(plan, NOW)
    assert (deps.register.state().live, deps.register.state().previous) == (before.live, before.previous)
    assert set(deps.register.generations) == {before.live}


def test_an_import_overtaken_by_another_does_not_switch(deps):
    import_file(deps, csv_bytes(holders(40)))
    with importing(deps, csv_bytes(holders(40, status="expired"))) as slow:
        assert slow.check().passed
        plan = slow.plan(5)
        overtaking = import_file(deps, csv_bytes(holders(40, status="revoked")))
        with pytest.raises(RegisterChanged):
            slow.carry_out(plan, NOW)
    assert deps.register.state().live == overtaking.state.live
    assert {e.status.value for e in deps.register.entries_live.values()} == {"revoked"}


class FailingRegister:
    """The in-memory register, but the process dies after `after` entries of the next write."""

    def __init__(self, register, after: int):
        self._register, self._after = register, after

    def __getattr__(self, name):
        return getattr(self._register, name)

    def save_all(self, generation, entries):
        def until_the_crash():
            for number, entry in enumerate(entries):
                if number == self._after:
                    raise KeyboardInterrupt("the operator's laptop went to sleep")
                yield entry

        return self._register.save_all(generation, until_the_crash())

    def delete_generation(self, generation):
        raise ConnectionError("and the network with it")


def test_a_crash_mid_write_leaves_the_live_register_and_the_next_prune_cleans_up(deps):
    import_file(deps, csv_bytes(holders(40)))
    live = deps.register.state().live
    crashing = FailingRegister(deps.register, after=25)
    with RegisterImport(
        File(csv_bytes(holders(40, status="expired"))), crashing, deps.keys, deps.settings.reference_rules
    ) as job:
        assert job.check().passed
        plan = job.plan(5)
        with pytest.raises(KeyboardInterrupt):
            job.carry_out(plan, NOW)
    assert deps.register.state().live == live and len(deps.register.entries_live) == 40
    [leftover] = set(deps.register.generations) - {live}
    assert len(deps.register.generations[leftover]) == 25
    assert prune_register(deps.register)[leftover] == 25
    assert set(deps.register.generations) == {live}
    assert prune_register(deps.register) == {deps.register.state().started: 0}  # again: nothing left


class PrunedMidWrite(FailingRegister):
    """The in-memory register, but an operator runs `register prune` while the import writes."""

    def save_all(self, generation, entries):
        def with_a_prune_meanwhile():
            for number, entry in enumerate(entries):
                if number == self._after:
                    prune_register(self._register)
                yield entry

        return self._register.save_all(generation, with_a_prune_meanwhile())

    def delete_generation(self, generation):
        return self._register.delete_generation(generation)


def test_a_prune_stops_an_import_still_writing_from_switching(deps):
    import_file(deps, csv_bytes(holders(40)))
    live = deps.register.state().live
    pruned = PrunedMidWrite(deps.register, after=10)
    with RegisterImport(
        File(csv_bytes(holders(40, status="expired"))), pruned, deps.keys, deps.settings.reference_rules
    ) as job:
        assert job.check().passed
        plan = job.plan(5)
        with pytest.raises(RegisterChanged):
            job.carry_out(plan, NOW)
    assert deps.register.state().live == live
    assert {e.status.value for e in deps.register.entries_live.values()} == {"in_force"}
    assert set(deps.register.generations) == {live}  # what it wrote after the prune went too


@pytest.mark.parametrize(
    ("live", "removed", "allowed"),
    [(0, 0, True), (200, 10, True), (200, 11, False), (206, 205, False)],
)
def test_a_file_may_remove_up_to_the_configured_share_of_the_live_register(live, removed, allowed):
    change = RegisterChange(added=1, removed=removed, changed=0, unchanged=live - removed)
    assert (import_refusal(change, 5, allow_shrink=False) is None) is allowed
    assert import_refusal(change, 5, allow_shrink=True) is None


def test_a_file_with_no_rows_is_refused_even_with_allow_shrink():
    nothing = RegisterChange(added=0, removed=206, changed=0, unchanged=0)
    assert "no rows" in import_refusal(nothing, 5, allow_shrink=True)
    assert "no rows" in import_refusal(RegisterChange(0, 0, 0, 0), 5, allow_shrink=False)


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("2027-03-31", "2027-03-31"),
        ("31/03/2027", "2027-03-31"),
        ("1/3/2027", "2027-03-01"),
        (" 2027-3-1 ", "2027-03-01"),
    ],
)
def test_expiry_dates_are_read_in_both_forms(written, meant):
    row = register_row(expiry_date=written)
    assert parse_register_row(row, ReferenceRules()).expires_on.isoformat() == meant


@pytest.mark.parametrize(
    "written", ["2027-02-30", "31-03-2027", "2027/03/31", "20270331", "2027-W13-3", "03/31/2027", "2027-03-31T00:00"]
)
def test_anything_else_is_not_a_date(written):
    with pytest.raises(InvalidInput) as refused:
        parse_register_row(register_row(expiry_date=written), ReferenceRules())
    assert "expiry_date" in refused.value.errors
