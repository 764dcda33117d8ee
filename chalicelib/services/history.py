"""Applying a domain change to a stored order: read, decide, write on condition, retry on a race."""

from __future__ import annotations

import logging
from typing import Callable

from ..domain.errors import ConcurrentChange
from ..domain.orders import Order
from ..domain.payments import Outcome
from .dependencies import Dependencies

log = logging.getLogger("tracekit")
ATTEMPTS = 4


def apply_change(
    reference: str, decide: Callable[[Order], Outcome], deps: Dependencies, event_id: str | None = None
) -> Order:
    """Idempotent per event id: an event already in the order's record changes nothing."""
    for _ in range(ATTEMPTS):
        before = deps.orders.get(reference)
        if event_id and event_id in before.processed_events:
            return before
        outcome = decide(before)
        if not outcome.changed:
            return before
        try:
            deps.orders.save(before, outcome.order, outcome.effects)
        except ConcurrentChange:
            continue
        log.info("order %s updated by %s", reference, outcome.order.history[-1].actor)
        return outcome.order
    raise ConcurrentChange(reference)
