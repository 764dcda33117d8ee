"""The sweep's figure at the end of the run: journeys × call points × 3 modes (fail, die, lost), and how many
converged."""

from __future__ import annotations

from tests.crashpoints.faults import MODES

TOTALS: dict[str, tuple[int, int, int]] = {}  # journey -> (calls, points run, converged)
FIGURE = "crash_sweep"  # the user property each journey's test reports its figure under


def pytest_runtest_logreport(report):
    """Gathered from the test reports, so the figure is whole when pytest-xdist runs the journeys
    in worker processes (.ci/run's full sweep) and the reports come back to this one."""
    for name, value in report.user_properties:
        if name == FIGURE:
            journey, calls, run, converged = value
            TOTALS[journey] = (calls, run, converged)


def pytest_terminal_summary(terminalreporter):
    if not TOTALS:
        return
    calls = sum(c for c, _, _ in TOTALS.values())
    run = sum(r for _, r, _ in TOTALS.values())
    converged = sum(v for _, _, v in TOTALS.values())
    mode = terminalreporter.config.getoption("--crash-sweep")
    terminalreporter.write_sep("-", "crash-point sweep")
    SCOPE = ("each call site once, in turn in each", "each call (a loop's first, second and last) in each")
    terminalreporter.write_line(
        f"{mode}: {len(TOTALS)} journeys, {calls} external calls, {run} crash points run "
        f"({SCOPE[mode == 'full']} of {len(MODES)} "
        f"modes: {', '.join(MODES)}), "
        f"{converged} converged"
    )
