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
from ..domain.errors import ConcurrentChange, FulfilmentMessageRefused, PaymentServiceUnavailable
from ..domain.fulfilment import address_amendment, fulfilment_message
from ..domain.lifecycle import (
    CLAIM_LEASE,
    outstanding,
    record_amendment_sent,
    release,
    withhold_release,
)
from ..domain.orders import Order
from .dependencies import Dependencies
from .notifications import send_claimed

log = logging.getLogger("tracekit")
ATTEMPTS = 4
ERASURE_REFUND_REASON = "personal data erased before dispatch"  # the same words, the same refund key
HOLDER_CANCELLED_REASON = "cancelled by the holder before dispatch"
SUPPORT_CANCELLED_REASON = "cancelled by support: the kit maker could not deliver the kit"
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
    if Effect.CLOSE_CHECKOUT in effects and order.checkout_session_id:
        close_checkout(order.checkout_session_id, deps)
    owed = effects | outstanding(order)
    if Effect.REFUND_IN_FULL in owed:
        order = refund_in_full(order, deps)
    if Effect.RELEASE_TO_MANUFACTURER in owed:
        order = release_to_manufacturer(order, deps)
    if Effect.SEND_AMENDMENT in owed and order.amendment_unsent:
        order = send_amendment(order, deps)
    return order


def close_checkout(session_id: str, deps: Dependencies) -> None:
    """Expire the session at Stripe so it takes no payment. If Stripe cannot be reached it lapses
    on its own within the hold, and a payment it takes meanwhile is refunded (`accept_payment`)."""
    try:
        deps.payments.expire_checkout(session_id)
    except PaymentServiceUnavailable:
        log.warning("checkout session of an ended order not closed: Stripe unavailable")


def refund_in_full(order: Order, deps: Dependencies) -> Order:
    """The rest of the payment back to the holder, through the operators' own refund path (one
    idempotency key per order, so a retry refunds nothing twice). Raises PaymentServiceUnavailable;
    the refund stays owed (`outstanding`) and the next touch of the order makes it."""
    from .payments import refund_order  # payments applies changes through this module

    reason = ERASURE_REFUND_REASON if order.erased_at is not None else HOLDER_CANCELLED_REASON
    if order.cancelled_by_support:  # support ended it (an erasure after cannot change the key)
        reason = SUPPORT_CANCELLED_REASON
    return refund_order(order.reference, None, reason, "tracekit", deps)


def release_to_manufacturer(order: Order, deps: Dependencies) -> Order:
    """Send the fulfilment message, then record that it went (the lifecycle's `release`, whose
    confirmation email this caller then sends). A resend is deduplicated per fulfilment id."""
    recipient = deps.orders.delivery_of(order)  # opened here, for the message alone
    confirmed_at = order.confirmed_at or order.created_at
    message = fulfilment_message(
        order.reference, recipient, deps.settings.product_code, confirmed_at, order.fulfilment_attempt
    )
    try:
        deps.fulfilment_queue.send(message)
    except FulfilmentMessageRefused as refused:
        return _withhold(order, refused.problems, deps)
    outcome = release(order, deps.clock())
    if not outcome.changed:
        return order
    try:
        save(order, outcome, deps)
    except ConcurrentChange:  # changed since it was read: decide again on the order as it is now
        return apply_change(order.reference, lambda latest: release(latest, deps.clock()), deps)
    log.info("order released to manufacturer: %s", order.reference)
    return carry_out(outcome.order, outcome.effects, deps)


def _withhold(order: Order, problems: tuple[str, ...], deps: Dependencies) -> Order:
    """A message that breaks its schema is never sent: counted (FulfilmentMessagesRefused, alarmed),
    logged by field, and the order taken off the relay's list (`withhold_release`)."""
    deps.metrics.report({"FulfilmentMessagesRefused": 1})
    log.error("fulfilment message of order %s refused, not sent: %s", order.reference, ", ".join(problems))
    return apply_change(order.reference, lambda latest: withhold_release(latest, problems, deps.clock()), deps)


def send_amendment(order: Order, deps: Dependencies) -> Order:
    """Send the order's latest address amendment (the whole current recipient), then record that
    it went (`record_amendment_sent`). A resend is deduplicated per amendment; one the relay finds
    unsent (`outstanding`) is sent on its next run. One that breaks its schema is not sent: it is
    counted and logged (the kit maker's amendments list still shows the address) and stays owed."""
    recipient = deps.orders.delivery_of(order)  # opened here, for the message alone
    number = order.amendments_issued
    amendment = address_amendment(
        order.reference, recipient, number, order.amended_at or deps.clock(), deps.settings.product_code
    )
    try:
        deps.fulfilment_queue.send_amendment(amendment)
    except FulfilmentMessageRefused as refused:
        deps.metrics.report({"FulfilmentMessagesRefused": 1})
        log.error("amendment of order %s refused, not sent: %s", order.reference, ", ".join(refused.problems))
        return order
    log.info("address amendment %d of order %s sent to manufacturer", number, order.reference)
    return apply_change(order.reference, lambda latest: record_amendment_sent(latest, number, deps.clock()), deps)
