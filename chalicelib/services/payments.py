"""Stripe's side: one idempotent fulfilment whether the news comes by webhook or by the holder's
return from Checkout; refunds and disputes from Stripe's current view; lapsed holds swept."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from ..domain.errors import OrderNotFound, PaymentServiceUnavailable, RefundRefused
from ..domain.changes import Source
from ..domain.lifecycle import (
    accept_payment,
    expire_checkout,
    fail_payment,
    note_processing,
    pay_as_expected,
    reconcile_money,
)
from ..domain.orders import MONEY_TAKEN, Order
from ..ports import PaymentEvent
from .changes import Decision, apply_change, apply_guarded
from .dependencies import Dependencies

log = logging.getLogger("tracekit")

MONEY_EVENT_PREFIXES = ("charge.refund", "refund.", "charge.dispute.")


def handle_stripe_webhook(payload: bytes, signature_header: str, deps: Dependencies) -> str:
    """Verify, then act on the event once, whatever order events arrive in. Returns what happened,
    for the log; raises (so Stripe retries) when a dependency fails."""
    event = deps.payments.parse_webhook(payload, signature_header)
    try:
        return _dispatch(event, deps)
    except OrderNotFound:
        log.warning("stripe event %s (%s) names no order of ours", event.id, event.type)
        return "unknown order"


def _dispatch(event: PaymentEvent, deps: Dependencies) -> str:
    source = Source("stripe", event.id)
    now = deps.clock()
    if event.type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if event.payment_status == "paid":
            return fulfil(event, deps)
        _apply(event, lambda o: note_processing(o, event.payment_intent_id, source, now), deps)
        return "payment processing"
    if event.type == "checkout.session.async_payment_failed":
        _apply(event, lambda o: fail_payment(o, source, now), deps)
        return "payment failed"
    if event.type == "checkout.session.expired":
        _apply(event, lambda o: expire_checkout(o, event.session_id, source, now), deps)
        return "checkout expired"
    if event.type.startswith(MONEY_EVENT_PREFIXES) and event.payment_intent_id:
        return _reconcile(event.payment_intent_id, source, deps)
    return "ignored"


def _apply(event: PaymentEvent, decide: Decision, deps: Dependencies) -> Order:
    if not event.order_reference:
        raise OrderNotFound("(none)")
    return apply_change(event.order_reference, decide, deps, event.id)


def fulfil(event: PaymentEvent, deps: Dependencies) -> str:
    """Stripe's fulfilment guide's `fulfil(session)`: safe to call from the webhook and from the
    confirmation page, as often as either likes. The common case is one conditional write."""
    if not event.order_reference:
        raise OrderNotFound("(none)")
    source, now = Source("stripe", event.id), deps.clock()
    order = None
    if event.paid is not None:
        order = apply_guarded(
            event.order_reference, pay_as_expected(event.paid, event.payment_intent_id, source, now), deps
        )
    if order is None:
        decide = lambda o: accept_payment(o, event.paid, event.payment_intent_id, source, now)  # noqa: E731
        order = apply_change(event.order_reference, decide, deps, event.id)
    return "paid" if order.payment in MONEY_TAKEN else f"not fulfilled ({order.payment_flag or order.payment.value})"


@dataclass(frozen=True)
class ReturnFromCheckout:
    """The order as the holder comes back from Checkout, and whether Stripe could be asked about it
    (when it could not, the payment's outcome is unknown here until the webhook brings it)."""

    order: Order
    stripe_answered: bool = True


def fulfil_on_return(reference: str, session_id: str | None, deps: Dependencies) -> ReturnFromCheckout:
    """The holder is back from Checkout before (or instead of) the webhook: ask Stripe. If Stripe
    cannot be reached the order is left as it is: the webhook (retried by Stripe for days) or the
    hold sweep settles it, and the holder is told so, not that they were not charged."""
    order = deps.orders.get(reference)
    if not order.awaits_payment or not session_id or session_id != order.checkout_session_id:
        return ReturnFromCheckout(order)
    try:
        facts = deps.payments.read_checkout(session_id)
    except PaymentServiceUnavailable:
        log.warning("return from checkout for order %s: Stripe unavailable, left for the webhook", reference)
        return ReturnFromCheckout(order, stripe_answered=False)
    if facts.order_reference != reference:
        return ReturnFromCheckout(order)
    if facts.payment_status == "paid":
        fulfil(facts, deps)
    elif facts.type == "checkout.session.completed":
        apply_change(
            reference,
            lambda o: note_processing(o, facts.payment_intent_id, Source("holder-return"), deps.clock()),
            deps,
        )
    return ReturnFromCheckout(deps.orders.get(reference))


def _reconcile(payment_intent_id: str, source: Source, deps: Dependencies, note: str = "") -> str:
    view = deps.payments.money_view(payment_intent_id)
    if not view.order_reference:
        return "ignored (not a tracekit payment)"
    order = apply_change(
        view.order_reference, lambda o: reconcile_money(o, view, source, deps.clock(), note), deps, source.event_id
    )
    return f"payment {order.payment.value}"


def refund_order(reference: str, amount_pence: int | None, reason: str, operator: str, deps: Dependencies) -> Order:
    """An operator's refund. Idempotent: the same command again (same amount, same reason) is
    recognised from the order's record and does nothing more, even after Stripe's 24-hour
    idempotency window. The recorded state comes from Stripe's view, as for a dashboard refund."""
    order = deps.orders.get(reference)
    key = _refund_key(reference, amount_pence, reason)
    if f"refund-key:{key}" in order.processed_events:
        return order
    amount, intent = _refundable(order, amount_pence)
    refund_id = deps.payments.refund(intent, amount, key, reference)
    _reconcile(
        intent,
        Source(f"operator:{operator}", f"refund-key:{key}"),
        deps,
        note=f" (operator refund {refund_id}: {reason})",
    )
    log.info("operator refund %s on order %s", refund_id, reference)
    return deps.orders.get(reference)


def _refundable(order: Order, amount_pence: int | None) -> tuple[int, str]:
    """The amount to refund and the payment it comes from; RefundRefused when there is none."""
    if order.payment not in MONEY_TAKEN or not order.payment_intent_id:
        raise RefundRefused(f"order {order.reference} has no payment to refund (payment is {order.payment.value})")
    remaining = order.amount.pence - order.refunded_pence
    amount = remaining if amount_pence is None else amount_pence
    if remaining <= 0:
        raise RefundRefused(f"order {order.reference} is already fully refunded")
    if amount <= 0 or amount > remaining:
        raise RefundRefused(f"a refund must be between 1 and {remaining} pence for order {order.reference}")
    return amount, order.payment_intent_id


def _refund_key(reference: str, amount_pence: int | None, reason: str) -> str:
    digest = hashlib.sha256(reason.strip().lower().encode()).hexdigest()[:12]
    return f"refund-{reference}-{amount_pence if amount_pence is not None else 'full'}-{digest}"


def sweep_lapsed_holds(deps: Dependencies) -> int:
    """Scheduled: give back the claims of unpaid orders whose hold ran out and whose expiry
    webhook never came. Asks Stripe first, so a payment made meanwhile is honoured, not lost."""
    swept, source = 0, Source("system:sweep")
    for reference in deps.orders.awaiting_past_hold(deps.clock()):
        order = deps.orders.get(reference)
        if not order.awaits_payment or order.payment_processing:
            continue
        if order.checkout_session_id:
            facts = deps.payments.read_checkout(order.checkout_session_id)
            if facts.payment_status == "paid":
                fulfil(facts, deps)
                continue
            deps.payments.expire_checkout(order.checkout_session_id)
        apply_change(reference, lambda o: expire_checkout(o, None, source, deps.clock()), deps)
        swept += 1
    return swept
