"""The console's pure rules: sessions' two time limits, groups from Cognito's token, pounds typed
by staff into pence, and each use case refusing a member of another group before it acts."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.staff import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    SIGN_IN_STEP_TIMEOUT,
    Challenge,
    Group,
    NotPermitted,
    StaffMember,
    StaffSession,
    member_from_id_token,
)
from chalicelib.services import staff

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


def session(**changes) -> StaffSession:
    base = StaffSession("k", NOW, NOW, "c", member=StaffMember("s@x", frozenset({Group.SUPPORT})))
    return StaffSession(**{**base.__dict__, **changes})


def test_a_session_lives_until_15_idle_minutes_or_8_hours_whichever_is_first():
    assert session().live_at(NOW + IDLE_TIMEOUT - timedelta(seconds=1))
    assert not session().live_at(NOW + IDLE_TIMEOUT)
    busy = session(last_seen_at=NOW + ABSOLUTE_TIMEOUT - timedelta(minutes=1))
    assert busy.live_at(NOW + ABSOLUTE_TIMEOUT - timedelta(seconds=1))
    assert not busy.live_at(NOW + ABSOLUTE_TIMEOUT)
    half_done = session(member=None, challenge=Challenge("SOFTWARE_TOKEN_MFA", "u", "s"))
    assert half_done.live_at(NOW + SIGN_IN_STEP_TIMEOUT - timedelta(seconds=1))
    assert not half_done.live_at(NOW + SIGN_IN_STEP_TIMEOUT)


def token_with(claims: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"header.{body}.signature"


def test_only_known_groups_are_taken_from_the_id_token():
    member = member_from_id_token(
        token_with({"cognito:username": "u-1", "cognito:groups": ["finance", "superuser", "admin"]})
    )
    assert member == StaffMember("u-1", frozenset({Group.FINANCE, Group.ADMIN}))
    assert member_from_id_token(token_with({"cognito:username": "u-2"})).groups == frozenset()


@pytest.mark.parametrize(
    ("typed", "pence"), [("8.95", 895), ("£8.95", 895), (" 2.5 ", 250), ("1", 100), ("", None), ("  ", None)]
)
def test_pounds_typed_by_staff_become_pence(typed, pence):
    assert staff.pence_from_pounds(typed) == pence


@pytest.mark.parametrize("typed", ["lots", "0", "-1", "1.234", "0.001", "NaN", "1e3x"])
def test_an_amount_that_is_not_pounds_and_pence_is_refused_by_field(typed):
    with pytest.raises(InvalidInput) as refused:
        staff.pence_from_pounds(typed)
    assert list(refused.value.errors) == ["amount"]


def test_each_use_case_refuses_another_groups_member_before_it_touches_anything():
    finance = StaffMember("f@x", frozenset({Group.FINANCE}))
    support = StaffMember("s@x", frozenset({Group.SUPPORT}))
    nothing = object()  # no dependencies at all: a refusal must come before any is used
    with pytest.raises(NotPermitted):
        staff.view_order(finance, "TK-AAAAA-AAAAA", nothing)  # type: ignore[arg-type]
    with pytest.raises(NotPermitted):
        staff.refund(finance, "TK-AAAAA-AAAAA", "1", "r", nothing)  # type: ignore[arg-type]
    with pytest.raises(NotPermitted):
        staff.view_delivery(finance, "TK-AAAAA-AAAAA", "r", nothing)  # type: ignore[arg-type]
    with pytest.raises(NotPermitted):
        staff.reconciliation_on_screen(support, "2026-11-01", "2026-11-02", nothing)  # type: ignore[arg-type]


def test_a_reason_is_required_and_kept_to_one_line_of_at_most_500_characters():
    assert staff.reason_given("  holder\nrang  ") == "holder rang"
    for bad in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput):
            staff.reason_given(bad)
