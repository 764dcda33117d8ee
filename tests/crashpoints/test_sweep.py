"""The crash-point sweep: every journey, every external call it makes, each failing as its
service fails, each followed by the process dying, and each taking effect with its answer lost;
then recovery exactly as production recovers, and every promise checked. `make test` runs a
sample that reaches every call site once, the modes taken in turn; `--crash-sweep=full` (in
.ci/run) runs every call in every mode.

For each journey: a run with no fault records its calls and its outcome. Then for each call k and
each mode, a fresh world runs the journey with that one fault planted; each actor retries what it
was told to retry; afterwards Stripe sends again whatever it holds (it retries for three days and
may send anything twice), and the schedules run, hours apart, twice each. The run must break no
invariant (tests/crashpoints/invariants.py) and end where the faultless run ended.
"""

from __future__ import annotations

import time

import pytest

from tests.crashpoints.conftest import FIGURE
from tests.crashpoints.faults import MODES, Faults, Point, ProcessDied, install
from tests.crashpoints.invariants import orders_now, outcome, violations
from tests.crashpoints.journeys import JOURNEYS, Journey
from tests.crashpoints.world import TryAgain, World

RETRIES = 3  # an actor's attempts at one step after the first
SCHEDULES = ("relay_unsent_fulfilments", "sweep_lapsed_holds")


@pytest.fixture
def faults(monkeypatch) -> Faults:
    recorder = Faults()
    install(recorder, monkeypatch)
    return recorder


def run(journey: Journey, moto_url: str, faults: Faults, point: Point | None):
    """One run in a fresh world: (its violations, its outcome, the calls it made)."""
    faults.calls, faults.plan, faults.fired = [], point, None
    world = World(moto_url, faults)
    try:
        seen = [orders_now(world)]
        for step in journey.steps:
            _perform(step, world, faults)
            seen.append(orders_now(world))
        _recover(world)
        seen.append(orders_now(world))
        found = violations(world, seen, point, faults.fired)
        if journey.expect:
            with faults.quiet():
                try:
                    journey.expect(world)
                except AssertionError as exc:
                    found.append(f"journey's end not reached: {exc}")
        return found, outcome(world), list(faults.calls)
    finally:
        world.close()


def _perform(step, world: World, faults: Faults) -> None:
    for attempt in range(1 + RETRIES):
        try:
            if step.swept:
                with faults.arm(step.name):
                    step.act(world)
            else:
                with faults.quiet():
                    step.act(world)
            return
        except (TryAgain, ProcessDied):
            if attempt == RETRIES:
                raise AssertionError(f"{step.name}: still failing after {RETRIES} retries") from None


def _recover(world: World) -> None:
    """What production does on its own afterwards: Stripe sends every event again, the schedules run."""
    for hours in (1, 5):
        for event in world.emulator.events():
            _perform_quietly(lambda e=event: world.deliver(e))
        world.later(hours=hours)
        for name in SCHEDULES * 2:
            _perform_quietly(lambda n=name: world.run_job(n))


def _perform_quietly(action) -> None:
    for _ in range(1 + RETRIES):
        try:
            return action()
        except TryAgain:
            continue


def points(calls: list, full: bool, seen_sites: set[str]) -> list[Point]:
    """Full: every call of the journey in every mode, except inside a loop (below). Sample: each
    call at a site (the line of tracekit that makes it, and the operation) that no journey before
    has swept, once, in the next mode in turn, so that the sample meets every site and every mode,
    and fits in `make test`."""
    chosen = []
    looped = _inside_loops(calls) if full else set()
    for index, call in enumerate(calls):
        if full and index not in looped:
            chosen += [Point(index, mode) for mode in MODES]
        elif not full and call.where not in seen_sites:
            chosen.append(Point(index, MODES[len(seen_sites) % len(MODES)]))
        seen_sites.add(call.where)
    return chosen


def _inside_loops(calls: list) -> set[int]:
    """The calls a loop repeats: a site reached more than twice in one step (a page of a listing,
    one order of a thousand) is swept at its first, second and last call, the loop's start, its
    first repeat (with the first's effects in place) and its end, and not at each call between
    (the daily export reads one period's orders and charges in 162 calls from 6 sites)."""
    occurrences: dict[tuple[str, str], list[int]] = {}
    for index, call in enumerate(calls):
        occurrences.setdefault((call.step, call.where), []).append(index)
    return {index for seen in occurrences.values() for index in seen[2:-1]}


SEEN_SITES: set[str] = set()


@pytest.mark.timeout(1200)  # a journey's whole sweep, in full mode on a slow machine
@pytest.mark.parametrize("journey", JOURNEYS, ids=[j.name for j in JOURNEYS])
def test_every_crash_point_converges(journey, moto_url, faults, request):
    full = request.config.getoption("--crash-sweep") == "full"
    started = time.monotonic()
    found, expected, calls = run(journey, moto_url, faults, None)
    assert not found, f"{journey.name} breaks its promises with no fault at all: {found}"
    failures = []
    chosen = points(calls, full, SEEN_SITES)
    for point in chosen:
        problems, reached, _ = run(journey, moto_url, faults, point)
        if faults.fired is None:  # the run took another path before call k: it proved nothing
            problems.append("the planted fault never went off")
        if reached != expected:
            problems.append(f"ended in {reached}, not {expected}")
        if problems:
            failures.append(f"{point.mode} at call {point.index} ({calls[point.index]}): {problems}")
    request.node.user_properties.append((FIGURE, (journey.name, len(calls), len(chosen), len(chosen) - len(failures))))
    print(
        f"\ncrash sweep: {journey.name}: {len(calls)} calls, {len(chosen)} points run, "
        f"{len(chosen) - len(failures)} converged, {time.monotonic() - started:.1f} s"
    )
    assert not failures, "\n".join(failures)


def test_a_loop_is_swept_at_its_first_second_and_last_call_and_every_other_call_in_every_mode():
    from tests.crashpoints.faults import Call

    read = Call("export", "finance.py:90", "stripe.GET /charges/{id}")
    calls = [Call("export", "finance.py:80", "dynamodb.Query"), *[read] * 5, Call("pay", "finance.py:90", "x")]
    chosen = points(calls, True, set())
    assert sorted({p.index for p in chosen}) == [0, 1, 2, 5, 6]
    assert all(sum(p.index == i for p in chosen) == len(MODES) for i in (0, 1, 2, 5, 6))
