"""Applying the lifecycle's outcomes: save the order on condition of its version, then carry out
the effects it lists. The one place a decision of the domain meets the world.

The store carries out what belongs in the change's own write (the claim moves, owed emails join
the outbox, held by this caller); this module then does the rest: the fulfilment message goes to
the kit maker (recorded by `release`), and the emails this caller holds are sent. A redelivered
fact, or any later touch of the order, finishes what a crash left undone (`outstanding`).
"""

from __future__ import annotations

import logging
from typing import Callable

from ..domain.changes import Effect, GuardedChange, Outcome, emails_owed
from ..domain.errors import ConcurrentChange
from ..domain.fulfilment import fulfilment_message
from ..domain.lifecycle import CLAIM_LEASE, outstanding, release
from ..domain.orders import Order
from .dependencies import Dependencies
from .notifications import send_claimed

log = logging.getLogger("tracekit")
ATTEMPTS = 4
Decision = Callable[[Order], Outcome]  # a lifecycle transition with its fact bound


def apply_change(reference: str, decide: Decision, deps: Dependencies, event_id: str | None = None) -> Order:
    """Read, decide, write on condition, retry on a race; then carry out the effects. Idempotent
    per event id: an event already in the order's record changes nothing."""
    for _ in range(ATTEMPTS):
        before = deps.orders.get(reference)
        if event_id and event_id in before.processed_events:
            return carry_out(before, frozenset(), deps)
        outcome = decide(before)
        if not outcome.changed:
            return carry_out(before, frozenset(), deps)
        try:
            save(before, outcome, deps)
        except ConcurrentChange:
            continue
        log.info("order %s updated by %s", reference, outcome.order.history[-1].actor)
        return carry_out(outcome.order, outcome.effects, deps)
    raise ConcurrentChange(reference)


def apply_guarded(reference: str, change: GuardedChange, deps: Dependencies) -> Order | None:
    """The change in one conditional write, if the order meets its requirements; else None."""
    order = deps.orders.apply_guarded(reference, change)
    return None if order is None else carry_out(order, change.effects, deps)


def save(before: Order, outcome: Outcome, deps: Dependencies) -> None:
    """Store the outcome; the emails it owes are held by this caller for a lease."""
    held = deps.clock() + CLAIM_LEASE if emails_owed(outcome.effects) else None
    deps.orders.save(before, outcome.order, outcome.effects, mail_held_until=held)


def carry_out(order: Order, effects: frozenset[Effect], deps: Dependencies) -> Order:
    """The effects the store does not carry out, and any a crash left outstanding. Returns the order
    as it is afterwards. Raises QueueUnavailable (the order stays on the relay's list)."""
    emails = emails_owed(effects)
    if emails:
        send_claimed(order, emails, deps)
    if Effect.RELEASE_TO_MANUFACTURER in effects | outstanding(order):
        order = release_to_manufacturer(order, deps)
    return order


def release_to_manufacturer(order: Order, deps: Dependencies) -> Order:
    """Send the fulfilment message, then record that it went (the lifecycle's `release`, whose
    confirmation email this caller then sends). A resend is deduplicated per fulfilment id."""
    recipient = deps.orders.delivery_of(order)  # opened here, for the message alone
    confirmed_at = order.confirmed_at or order.created_at
    deps.fulfilment_queue.send(fulfilment_message(order.reference, recipient, deps.settings.product_code, confirmed_at))
    outcome = release(order, deps.clock())
    if not outcome.changed:
        return order
    try:
        save(order, outcome, deps)
    except ConcurrentChange:  # changed since it was read: decide again on the order as it is now
        return apply_change(order.reference, lambda latest: release(latest, deps.clock()), deps)
    log.info("order released to manufacturer: %s", order.reference)
    return carry_out(outcome.order, outcome.effects, deps)
