"""What the holder's order page says: the true state, in one word the template switches on."""

from __future__ import annotations

from ..domain.orders import Order, OrderState, PaymentState


def order_status(order: Order) -> str:
    """complete | processing | confirming | failed | expired | refunded | cancelled."""
    if order.is_confirmed:
        return "complete"
    if order.state is OrderState.PLACED:
        return "processing" if order.payment_processing else "confirming"
    if order.payment is PaymentState.FAILED:
        return "failed"
    if order.state is OrderState.EXPIRED:
        return "expired"
    if order.payment is PaymentState.REFUNDED:
        return "refunded"
    return "cancelled"
