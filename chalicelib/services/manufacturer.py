"""The manufacturer's side: its work list, what it reports back, and the relay that makes sure
nothing confirmed is left unsent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..domain.attempts import on_attempt
from ..domain.changes import Outcome, Source
from ..domain.credentials import Grant, grant_for, read_token
from ..domain.errors import InvalidInput, OrderNotFound, QueueUnavailable
from ..domain.fulfilment import Page, parse_dispatch, parse_reason
from ..domain.lifecycle import (
    accept,
    acknowledge_amendment,
    acknowledge_cancellation,
    dispatch,
    outstanding,
    reject,
    report_returned,
)
from ..domain.orders import Order
from ..domain.references import fulfilment_attempt_of, order_reference_of
from .changes import Decision, apply_change, carry_out
from .dependencies import Dependencies

log = logging.getLogger("tracekit")
MAX_PAGE = 100


def authorize(authorization: str | None, deps: Dependencies) -> Grant | None:
    """One keyed lookup and a constant-time compare; None for anything not an active key."""
    token = read_token(authorization)
    if token is None:
        return None
    scope, key_id, secret = token
    return grant_for(deps.api_keys.find(key_id), scope, key_id, secret)


def open_fulfilments(cursor: str | None, limit: int | None, deps: Dependencies) -> Page:
    return deps.fulfilments.open_fulfilments(cursor, _page_size(limit))


def cancellations(cursor: str | None, limit: int | None, deps: Dependencies) -> Page:
    return deps.fulfilments.cancellations(cursor, _page_size(limit))


def accept_fulfilment(fulfilment_id: str, by: str, deps: Dependencies) -> Order:
    return _act(fulfilment_id, lambda o: accept(o, Source(f"manufacturer:{by}"), deps.clock()), deps)


def dispatch_fulfilment(fulfilment_id: str, report: dict[str, Any], by: str, deps: Dependencies) -> Order:
    def decide(order: Order) -> Outcome:
        details = parse_dispatch(report, order.released_at, deps.clock())
        return dispatch(order, details, Source(f"manufacturer:{by}"), deps.clock())

    return _act(fulfilment_id, decide, deps)


def reject_fulfilment(fulfilment_id: str, reason: object, by: str, deps: Dependencies) -> Order:
    text = parse_reason(reason)
    return _act(fulfilment_id, lambda o: reject(o, text, Source(f"manufacturer:{by}"), deps.clock()), deps)


def report_returned_fulfilment(fulfilment_id: str, body: dict[str, Any], by: str, deps: Dependencies) -> Order:
    """The reason is required, as for a rejection: support needs it to resolve the return."""
    text = parse_reason(body.get("reason"))
    return _act(fulfilment_id, lambda o: report_returned(o, text, Source(f"manufacturer:{by}"), deps.clock()), deps)


def acknowledge(fulfilment_id: str, by: str, deps: Dependencies) -> Order:
    return _act(fulfilment_id, lambda o: acknowledge_cancellation(o, Source(f"manufacturer:{by}"), deps.clock()), deps)


def amendments(cursor: str | None, limit: int | None, deps: Dependencies) -> Page:
    """Open fulfilments whose address the holder changed, not yet acknowledged (current recipient)."""
    return deps.fulfilments.amendments(cursor, _page_size(limit))


def acknowledge_amendment_of(fulfilment_id: str, body: dict[str, Any], by: str, deps: Dependencies) -> Order:
    number = parse_amendment_number(body.get("amendment"))
    source = Source(f"manufacturer:{by}")
    return _act(fulfilment_id, lambda o: acknowledge_amendment(o, number, source, deps.clock()), deps)


def parse_amendment_number(raw: object) -> int:
    """A whole number from 1 (JSON's 2.0 is 2); anything else is refused as input."""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidInput({"amendment": "amendment must be the whole number of the amendment, from 1"})
    return raw


def _act(fulfilment_id: str, decide: Decision, deps: Dependencies) -> Order:
    """The report applies to the attempt its id names: an earlier attempt's (superseded by a
    replacement) is the same report again or a conflict (lifecycle.on_attempt)."""
    reference, attempt = order_reference_of(fulfilment_id), fulfilment_attempt_of(fulfilment_id)
    if reference is None or attempt is None:
        raise OrderNotFound(str(fulfilment_id)[:40])
    return apply_change(reference, lambda order: on_attempt(order, attempt, decide), deps)


def relay_unsent(deps: Dependencies) -> int:
    """Scheduled: send every confirmed order whose message did not go (a failed send, or a
    process that died between the write and the send). Safe to run twice: SQS deduplicates by
    fulfilment id, and the release is recorded on condition it was not already."""
    sent = 0
    for reference in deps.fulfilments.relay_pending():
        order = deps.orders.get(reference)
        if not outstanding(order):
            continue
        try:
            carry_out(order, frozenset(), deps)
        except QueueUnavailable:
            log.error("relay: queue unavailable; %d sent this run", sent)
            break
        sent += 1
    return sent


@dataclass(frozen=True)
class FulfilmentHealth:
    stuck: list[str]
    dead_letters: int


def fulfilment_health(deps: Dependencies, publish: bool = True) -> FulfilmentHealth:
    """Released but not dispatched after the configured days, and the dead-letter depth; both are
    published as metrics for alarms."""
    cutoff = deps.clock() - timedelta(days=deps.settings.stuck_after_days)
    stuck = deps.fulfilments.released_before(cutoff)  # ids only: the health check opens no name
    health = FulfilmentHealth(stuck, deps.fulfilment_queue.dead_letter_depth())
    if publish:
        deps.metrics.report({"StuckFulfilments": len(health.stuck), "FulfilmentDeadLetters": health.dead_letters})
    return health


def _page_size(limit: object) -> int:
    if limit is None:
        return 50
    try:
        size = int(str(limit))
    except (TypeError, ValueError):
        raise InvalidInput({"limit": "limit must be a whole number from 1 to 100"}) from None
    if not 1 <= size <= MAX_PAGE:
        raise InvalidInput({"limit": "limit must be a whole number from 1 to 100"})
    return size
