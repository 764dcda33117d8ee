"""The layers' import rules, read from the source (ast), so a lazy import inside a function counts too:
the domain imports only the domain; services import the domain, the ports, other services and the
settings; neither imports the web layer, an adapter or the composition root."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
ALLOWED = {
    "domain": ("chalicelib.domain",),
    "services": ("chalicelib.domain", "chalicelib.ports", "chalicelib.services", "chalicelib.settings"),
}


def imported_modules(path: Path) -> set[str]:
    """Every chalicelib module the file imports, relative imports resolved."""
    package = ".".join(path.relative_to(CHALICELIB.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            # `from . import x` and `from ..web import pages` import submodules: name them too
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "chalicelib" or name.startswith("chalicelib.")}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def sources(layer: str) -> list[Path]:
    return sorted((CHALICELIB / layer).glob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_it_may(layer):
    crossings = {}
    for path in sources(layer):
        modules = imported_modules(path)
        # `from ..domain.errors import InvalidInput` also yields `chalicelib.domain.errors.InvalidInput`,
        # which is within its module's prefix: only whole-module names need checking.
        wrong = sorted(name for name in modules if not within(name, ALLOWED[layer]))
        if wrong:
            crossings[path.name] = wrong
    assert crossings == {}, f"{layer} imports outside {ALLOWED[layer]}"


def test_the_rule_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """The walker itself: an import inside a function, relative or absolute, is found."""
    fake = tmp_path / "chalicelib" / "services" / "probe.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..web.pages import render\n    import chalicelib.adapters.ses_mailer\n")
    monkeypatch.setattr(sys.modules[__name__], "CHALICELIB", tmp_path / "chalicelib")
    found = imported_modules(fake)
    assert {"chalicelib.web.pages", "chalicelib.adapters.ses_mailer"} <= found
    assert not any(within(name, ALLOWED["services"]) for name in ("chalicelib.web.pages", "chalicelib.adapters"))
