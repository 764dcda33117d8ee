"""The ``/_emulator`` POST controls: each returns (JSON body, dashboard redirect query)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from devstack.stripe_emulator.constants import DISPUTE_REASONS
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.params import choice_param, optional_amount, parse_integer, required_choice

if TYPE_CHECKING:
    from devstack.stripe_emulator.emulator import StripeEmulator

ControlResult = tuple[dict[str, Any], dict[str, str]]
ControlAction = Callable[["StripeEmulator", str, dict[str, Any]], ControlResult]


def _control_redeliver(emulator: StripeEmulator, event_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/events/:id/redeliver."""
    status = emulator.redeliver(event_id)
    return {"event_id": event_id, "webhook_status": status}, {"done": "redelivered", "webhook_status": str(status)}


def _control_settle(emulator: StripeEmulator, session_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/sessions/:id/settle with outcome=succeeded|failed."""
    outcome = required_choice(params, "outcome", ("succeeded", "failed"))
    emulator.settle_async(session_id, outcome == "succeeded")
    return emulator.checkout_view(session_id).session, {"done": "settled"}


def _control_expire(emulator: StripeEmulator, session_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/sessions/:id/expire."""
    emulator.expire(session_id)
    return emulator.checkout_view(session_id).session, {"done": "expired"}


def _control_refund(emulator: StripeEmulator, payment_intent_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/payment_intents/:id/refund with an optional amount."""
    return emulator.refund(payment_intent_id, optional_amount(params)), {"done": "refunded"}


def _control_dispute(emulator: StripeEmulator, payment_intent_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/payment_intents/:id/dispute with optional amount and reason."""
    reason = choice_param(params, "reason", DISPUTE_REASONS) or "fraudulent"
    return emulator.dispute(payment_intent_id, optional_amount(params), reason), {"done": "disputed"}


def _control_close_dispute(emulator: StripeEmulator, dispute_id: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/disputes/:id/close with outcome=won|lost."""
    outcome = required_choice(params, "outcome", ("won", "lost"))
    return emulator.close_dispute(dispute_id, outcome == "won"), {"done": "closed"}


def _control_run_payout(emulator: StripeEmulator, _: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/payouts, optionally with now (Unix seconds) to pay out funds available later."""
    now = None if params.get("now") in (None, "") else parse_integer(params["now"], "now", minimum=0)
    payout = emulator.run_payout(now)
    if payout is None:
        raise ApiError(
            400,
            "There is no available balance to pay out yet: funds become available two days after each "
            "charge. Make today's balance available first (POST /_emulator/balance/available).",
            code="balance_insufficient",
        )
    return payout, {"done": "paid_out"}


def _control_make_available(emulator: StripeEmulator, _: str, __: dict[str, Any]) -> ControlResult:
    """POST /_emulator/balance/available: pending funds become available now (skipping Stripe's delay)."""
    moved = emulator.make_balance_available()
    return {"object": "emulator.balance_availability", "made_available": moved}, {"done": "made_available"}


def _control_fail_next(emulator: StripeEmulator, _: str, params: dict[str, Any]) -> ControlResult:
    """POST /_emulator/failures with count (0 cancels) and an optional status (500 unless given):
    the next count API requests fail, so a process outside this one can rehearse an outage."""
    count = parse_integer(params.get("count"), "count", minimum=0)
    status = 500 if params.get("status") in (None, "") else parse_integer(params["status"], "status", minimum=400)
    if status > 599:
        raise ApiError(
            400, "status must be an HTTP error status (400-599).", code="parameter_invalid_integer", param="status"
        )
    emulator.fail_next_requests(count, status)
    return {"object": "emulator.failures", "count": count, "status": status}, {"done": "failures_set"}


CONTROL_ROUTES: list[tuple[re.Pattern[str], ControlAction]] = [
    (re.compile(r"/_emulator/events/([^/]+)/redeliver"), _control_redeliver),
    (re.compile(r"/_emulator/sessions/([^/]+)/settle"), _control_settle),
    (re.compile(r"/_emulator/sessions/([^/]+)/expire"), _control_expire),
    (re.compile(r"/_emulator/payment_intents/([^/]+)/refund"), _control_refund),
    (re.compile(r"/_emulator/payment_intents/([^/]+)/dispute"), _control_dispute),
    (re.compile(r"/_emulator/disputes/([^/]+)/close"), _control_close_dispute),
    # The empty group stands in for the object id the other controls take.
    (re.compile(r"/_emulator/payouts()"), _control_run_payout),
    (re.compile(r"/_emulator/balance/available()"), _control_make_available),
    (re.compile(r"/_emulator/failures()"), _control_fail_next),
]
