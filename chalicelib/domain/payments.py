"""Stripe's view of the money, and the payment state it means (the transitions: lifecycle.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .money import Money
from .orders import PaymentState


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


def money_state(amount: Money, refunded_pence: int, dispute_status: str | None) -> PaymentState:
    if dispute_status not in _DISPUTE_SETTLED_FOR_US:
        return PaymentState.DISPUTED
    if refunded_pence >= amount.pence > 0:
        return PaymentState.REFUNDED
    if refunded_pence > 0:
        return PaymentState.PARTIALLY_REFUNDED
    return PaymentState.PAID


def show(money: Money | None) -> str:
    return "nothing" if money is None else f"{money.pence} {money.currency}"
