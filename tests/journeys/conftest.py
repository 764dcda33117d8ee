"""Fixtures the journeys share; a module's own fixture of the same name takes precedence (the
kit maker's and the races' registers hold more holders)."""

from __future__ import annotations

import pytest

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from tests.builders import load_register, register_row


@pytest.fixture
def holders(deps):
    """A holder with a free kit (FA/2000, for the kit maker's side) and one who pays (FA/1001)."""
    load_register(deps, register_row("FA/2000", "SW1A 2AA", free_kit="yes"), register_row("FA/1001", "SW1A 2AA"))
    return deps


@pytest.fixture
def token(deps):
    """The kit maker's API key."""
    return create_api_key(Scope.MANUFACTURER, "Kit Maker Ltd", deps.api_keys, deps.clock())[1]
