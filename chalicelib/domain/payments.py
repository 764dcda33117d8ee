"""How Stripe's news changes an order. Pure functions: an order and a fact in, an outcome out.

Every function is safe to apply late, early or twice: facts are compared with the order's
current state rather than assumed to arrive in order, and paid money is never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .changes import Effect, Outcome, Source, noted, record_change
from .money import Money
from .orders import BEFORE_DISPATCH, MONEY_TAKEN, FulfilmentState, Order, OrderState, PaymentState


@dataclass(frozen=True)
class MoneyView:
    """Stripe's current truth about a payment: fetched, not pieced together from events."""

    order_reference: str | None
    payment_intent_id: str
    amount: Money
    amount_refunded: int
    dispute_status: str | None


# Dispute statuses after which the money is back with us.
_DISPUTE_SETTLED_FOR_US = {None, "won", "warning_closed"}


def accept_payment(
    order: Order, paid: Money | None, payment_intent_id: str | None, source: Source, now: datetime
) -> Outcome:
    """Stripe says the holder paid. Honoured even after expiry; flagged if the money is wrong."""
    if order.payment in MONEY_TAKEN:
        if payment_intent_id and order.payment_intent_id and payment_intent_id != order.payment_intent_id:
            return record_change(
                order,
                source,
                now,
                f"a second payment ({payment_intent_id}) for a paid order: flagged for refund",
                payment_flag=f"duplicate_payment:{payment_intent_id}",
            )
        return noted(order, source, now, "payment already recorded")
    if paid is None or paid != order.amount:
        return record_change(
            order,
            source,
            now,
            f"payment of {_show(paid)} does not match the order: flagged, not fulfilled",
            payment_flag=f"amount_mismatch:{_show(paid)}",
            payment_intent_id=payment_intent_id,
        )
    late = order.state in (OrderState.EXPIRED, OrderState.CANCELLED)
    payment = money_state(order.amount, order.refunded_pence, order.dispute_status)
    effects = {Effect.RECLAIM} if late else set()
    fulfilment, state, cancelled_at = order.fulfilment, OrderState.CONFIRMED, order.cancelled_at
    if payment is PaymentState.REFUNDED:  # refunded before we even heard it was paid
        fulfilment, state, cancelled_at = FulfilmentState.CANCELLED, OrderState.CANCELLED, now
    elif order.fulfilment is FulfilmentState.NOT_RELEASED:
        effects.add(Effect.RELEASE_TO_MANUFACTURER)
    change = "paid after the order had lapsed: honoured" if late else "paid"
    return record_change(
        order,
        source,
        now,
        change,
        effects,
        state=state,
        payment=payment,
        fulfilment=fulfilment,
        cancelled_at=cancelled_at,
        paid_at=now,
        payment_intent_id=payment_intent_id,
        payment_processing=False,
        hold_until=None,
    )


def note_processing(order: Order, payment_intent_id: str | None, source: Source, now: datetime) -> Outcome:
    """Checkout completed with a payment method that confirms later (bank debits)."""
    if not order.awaits_payment:
        return noted(order, source, now, "checkout completed (payment pending) after the order moved on")
    return record_change(
        order,
        source,
        now,
        "checkout completed; payment processing",
        payment_processing=True,
        payment_intent_id=payment_intent_id,
    )


def fail_payment(order: Order, source: Source, now: datetime) -> Outcome:
    """An asynchronous payment failed: the order lapses and the certificate may order again."""
    if not order.awaits_payment:
        return noted(order, source, now, f"payment failure ignored: payment is {order.payment.value}")
    return record_change(
        order,
        source,
        now,
        "payment failed",
        {Effect.RELEASE_CLAIM},
        state=OrderState.CANCELLED,
        payment=PaymentState.FAILED,
        payment_processing=False,
        hold_until=None,
    )


def expire_checkout(order: Order, session_id: str | None, source: Source, now: datetime) -> Outcome:
    """The checkout session lapsed unpaid. A late expiry never un-pays an order."""
    if session_id and order.checkout_session_id and session_id != order.checkout_session_id:
        return noted(order, source, now, f"expiry of superseded session {session_id} ignored")
    if not order.awaits_payment or order.payment_processing:
        return noted(order, source, now, f"expiry ignored: order is {order.state.value}, payment {order.payment.value}")
    return record_change(
        order, source, now, "checkout expired unpaid", {Effect.RELEASE_CLAIM}, state=OrderState.EXPIRED, hold_until=None
    )


def reconcile_money(order: Order, view: MoneyView, source: Source, now: datetime, note: str = "") -> Outcome:
    """Refunds and disputes, from Stripe's current view of the payment (so order of events is moot)."""
    refunded = max(order.refunded_pence, view.amount_refunded)
    facts = {"refunded_pence": refunded, "dispute_status": view.dispute_status}
    if order.payment not in MONEY_TAKEN:
        return record_change(
            order,
            source,
            now,
            f"noted before the payment: refunded {refunded}p, dispute {view.dispute_status or 'none'}{note}",
            **facts,
        )
    payment = money_state(order.amount, refunded, view.dispute_status)
    if payment is order.payment and refunded == order.refunded_pence and view.dispute_status == order.dispute_status:
        return noted(order, source, now, "no change to the money" + note)
    effects, cancels = set(), {}
    if payment is PaymentState.REFUNDED and order.fulfilment in BEFORE_DISPATCH:
        effects.add(Effect.CANCEL_FULFILMENT)
        cancels = {"fulfilment": FulfilmentState.CANCELLED, "state": OrderState.CANCELLED, "cancelled_at": now}
    change = f"payment {payment.value}: refunded {Money(refunded, order.amount.currency).display()}"
    if view.dispute_status:
        change += f", dispute {view.dispute_status}"
    change += note
    return record_change(order, source, now, change, effects, payment=payment, **cancels, **facts)


def abandon_checkout(order: Order, source: Source, now: datetime) -> Outcome:
    """No checkout session could be opened: nothing half-made may keep holding the certificate."""
    if not order.awaits_payment or order.checkout_session_id:
        return noted(order, source, now, "abandon ignored: a checkout session exists or the order moved on")
    return record_change(
        order,
        source,
        now,
        "payment service unavailable: order abandoned",
        {Effect.RELEASE_CLAIM},
        state=OrderState.CANCELLED,
        hold_until=None,
    )


def money_state(amount: Money, refunded_pence: int, dispute_status: str | None) -> PaymentState:
    if dispute_status not in _DISPUTE_SETTLED_FOR_US:
        return PaymentState.DISPUTED
    if refunded_pence >= amount.pence > 0:
        return PaymentState.REFUNDED
    if refunded_pence > 0:
        return PaymentState.PARTIALLY_REFUNDED
    return PaymentState.PAID


def _show(money: Money | None) -> str:
    return "nothing" if money is None else f"{money.pence} {money.currency}"
