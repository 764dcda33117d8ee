"""The documentation against the code.

docs/configuration.md's table of settings is checked against chalicelib/settings.py by running it:
the variables it reads (recorded from a controlled environment, not listed here a second time),
which of them are required, each documented default, and each documented limit. Then every
relative link in README.md and docs/*.md must point at a file (and heading) that exists, and the
README must keep the commands that .ci/run relies on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from chalicelib.settings import KeyStoreSettings, OperatorSettings, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
TABLE_HEADING = "## The app's settings"


# --- the table ------------------------------------------------------------------------------------


def documented_rows() -> dict[str, dict[str, str]]:
    """The table under TABLE_HEADING: variable -> {default, limits, meaning}, cells as written."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    assert TABLE_HEADING in text, f"{CONFIGURATION.name} has no section {TABLE_HEADING!r}"
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header = [cell.strip().lower() for cell in lines[0].strip("|").split("|")]
    assert header == ["variable", "default", "limits and allowed values", "meaning"], header
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 4, f"a row needs four cells: {line}"
        name = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        assert name, f"the first cell names one variable in backticks: {line}"
        assert name.group(1) not in rows, f"{name.group(1)} appears twice"
        rows[name.group(1)] = {"default": cells[1], "limits": cells[2], "meaning": cells[3]}
    return rows


ROWS = documented_rows()
REQUIRED = sorted(name for name, row in ROWS.items() if row["default"] == "required")


def literal(cell: str) -> str | None:
    """A default written as one literal in backticks (`7200`), or None (required, unset)."""
    found = re.fullmatch(r"`([^`]*)`(?: .*)?", cell)
    return found.group(1) if found else None


def minimal_environment() -> dict[str, str]:
    """Only the variables the table calls required, each with a usable value (32+ characters, as a
    secret must be)."""
    return {name: f"https://tracekit.example/{name.lower()}" for name in REQUIRED}


def build(**changes: str) -> Settings:
    return Settings.from_environ({**minimal_environment(), **changes})


def refused(**changes: str) -> bool:
    try:
        build(**changes)
    except SettingsError:
        return True
    return False


class RecordingEnvironment(Mapping[str, str]):
    """An environment that remembers every name asked of it, whether or not it is set."""

    def __init__(self, values: dict[str, str]):
        self._values, self.asked = values, set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def variables_the_code_reads() -> set[str]:
    asked = set()
    for settings in (Settings, OperatorSettings, KeyStoreSettings):
        env = RecordingEnvironment(minimal_environment())
        settings.from_environ(env)
        asked |= env.asked
    return asked


# --- the table against the code ---------------------------------------------------------------------


def test_the_table_lists_exactly_the_variables_the_settings_read():
    read = variables_the_code_reads()
    assert sorted(read - ROWS.keys()) == [], "read by chalicelib/settings.py but missing from docs/configuration.md"
    assert sorted(ROWS.keys() - read) == [], "in docs/configuration.md but not read by chalicelib/settings.py"


def test_the_variables_called_required_are_exactly_those_start_up_refuses_without():
    build()  # the required ones alone are enough
    for name in REQUIRED:
        env = minimal_environment()
        del env[name]
        with pytest.raises(SettingsError, match=name):
            Settings.from_environ(env)
    for name, row in ROWS.items():
        assert row["default"] == "required" or literal(row["default"]) is not None or row["default"] == "unset", (
            f"{name}: a default is `a literal`, required or unset, not {row['default']!r}"
        )


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if literal(row["default"]) is not None))
def test_each_documented_default_is_the_codes_default(name):
    # Setting a variable to its documented default changes nothing; a wrong default in the table
    # either changes the settings or is refused (3600 seconds for the journey, for instance).
    default = literal(ROWS[name]["default"])
    assert not refused(**{name: default}), f"{name}={default} (the documented default) is refused at start-up"
    assert build(**{name: default}) == build(), f"{name}={default} is not what the code does when it is unset"


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row["default"] == "unset"))
def test_a_variable_documented_as_unset_by_default_has_no_default_value(name):
    assert build(**{name: ""}) == build()


def integer_rows() -> list[str]:
    return sorted(n for n, row in ROWS.items() if re.fullmatch(r"\d+", literal(row["default"]) or ""))


def _number(pattern: str, text: str) -> int | None:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else None


def documented_bounds(name: str) -> tuple[int | None, int | None]:
    """'N to M', or 'at least N' and 'at most M', from the row's limits."""
    limits = ROWS[name]["limits"]
    bounds = re.search(r"^(\d+) to (\d+)\b", limits)
    if bounds:
        return int(bounds.group(1)), int(bounds.group(2))
    return _number(r"\bat least (\d+)\b(?! characters)", limits), _number(r"\bat most (\d+)\b", limits)


@pytest.mark.parametrize("name", integer_rows())
def test_each_documented_number_limit_is_the_one_start_up_enforces(name):
    limits = ROWS[name]["limits"]
    assert refused(**{name: "seven"}), f"{name} takes whole numbers only"
    minimum, maximum = documented_bounds(name)
    relative = re.search(r"\bat least `([A-Z_]+)` × (\d+) \+ (\d+)", limits)
    if relative:  # a floor set by another variable, at that variable's documented default
        other, times, plus = relative.group(1), int(relative.group(2)), int(relative.group(3))
        floor = int(literal(ROWS[other]["default"])) * times + plus
        assert not refused(**{name: str(floor)}) and refused(**{name: str(floor - 1)}), (
            f"{name}: the floor {other} × {times} + {plus} is not what start-up enforces"
        )
    # A row that names another variable (`JOURNEY_TTL_SECONDS`) is bounded by it too: its own
    # limits are tried with that variable at its documented maximum, where it leaves most room.
    room = {}
    for other in re.findall(r"`([A-Z][A-Z0-9_]+)`", limits):
        if other in ROWS and other != name and (relative is None or other != relative.group(1)):
            other_maximum = documented_bounds(other)[1]
            assert other_maximum is not None, f"{name} names {other}, whose maximum is not documented"
            room[other] = str(other_maximum)

    def is_refused(value: int) -> bool:
        return refused(**room, **{name: str(value)})

    assert minimum is not None or relative, f"{name}: document its minimum ('at least N' or 'N to M')"
    if minimum is not None:
        assert not is_refused(minimum), f"{name}={minimum} (the documented minimum) is refused"
        assert is_refused(minimum - 1), f"{name}={minimum - 1} (below the documented minimum) is accepted"
    if maximum is not None:
        assert not is_refused(maximum), f"{name}={maximum} (the documented maximum) is refused"
        assert is_refused(maximum + 1), f"{name}={maximum + 1} (above the documented maximum) is accepted"
    else:
        assert not is_refused(10**9), f"{name} has a maximum the table does not document"


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if "characters" in row["limits"]))
def test_each_documented_length_limit_is_the_one_start_up_enforces(name):
    shortest = _number(r"\bat least (\d+) characters", ROWS[name]["limits"])
    assert shortest is not None, f"{name}: 'at least N characters'"
    assert not refused(**{name: "k" * shortest}), f"{name} of {shortest} characters is refused"
    assert refused(**{name: "k" * (shortest - 1)}), f"{name} of {shortest - 1} characters is accepted"


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if literal(row["default"]) in {"true", "false"}))
def test_each_documented_flag_value_means_what_the_table_says(name):
    limits = ROWS[name]["limits"]
    meaning_true = re.findall(r"`([^`]+)`", limits.split(" mean true", 1)[0])
    assert meaning_true, f"{name}: say which values mean true ('`1`, `true` … mean true')"
    true_settings = build(**{name: meaning_true[0]})
    for value in meaning_true:
        assert build(**{name: value}) == true_settings, f"{name}={value} does not mean true"
        assert build(**{name: value.upper()}) == true_settings, f"{name}={value.upper()} does not mean true"
    if "anything else means false" in limits:
        assert build(**{name: "false"}) != true_settings
        assert build(**{name: "no"}) == build(**{name: "false"})


def test_the_free_kit_areas_refuse_what_the_table_says_they_refuse():
    assert "anything else is refused" in ROWS["FREE_KIT_AREAS"]["limits"]
    assert build(FREE_KIT_AREAS="E1, n17 6") != build()
    assert refused(FREE_KIT_AREAS="E1, Tottenham")


# --- links ------------------------------------------------------------------------------------------

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def headings(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_something_that_exists(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in headings(linked):
            broken.append(target)
    assert broken == [], f"{page.name}: links to nothing: {broken}"


def test_the_docs_pages_are_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in PAGES[1:] if f"(docs/{p.name})" not in readme]
    assert unlinked == [], "every docs page is reachable from the README"


def test_the_readme_keeps_the_commands_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^CI=1 make test$", ci, re.MULTILINE), ".ci/run runs the README's test command"
    commands = re.findall(r"^```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert commands and re.search(r"^make test\b", commands[0], re.MULTILINE), "README's first sh block: make test"
    assert re.search(r"^make run\b", commands[0], re.MULTILINE), "README's first sh block: make run"
