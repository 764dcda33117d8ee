"""What the holder's order page says: the true state, in one word the template switches on."""

from __future__ import annotations

from ..domain.orders import FulfilmentState, Order, OrderState, PaymentState


# An order that ended with these has (or is about to have) its money back.
REFUNDING = (PaymentState.REFUNDED, PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED)


def order_status(order: Order) -> str:
    """complete | processing | confirming | failed | expired | refunded | cancelled (the return
    from Checkout adds checking: Stripe could not be asked)."""
    if order.is_confirmed:
        return "complete"
    if order.state is OrderState.PLACED:
        return "processing" if order.payment_processing else "confirming"
    if order.payment is PaymentState.FAILED:
        return "failed"
    if order.state is OrderState.EXPIRED:
        return "expired"
    if order.payment in REFUNDING:  # refunded, or (an order its erasure ended) being refunded
        return "refunded"
    return "cancelled"


def holder_view(order: Order) -> dict:
    """The status page's headline and detail: what the holder needs, in plain words."""
    dispatch = order.dispatch
    if order.fulfilment is FulfilmentState.DISPATCHED and dispatch:
        return {
            "headline": "Your kit has been posted",
            "detail": f"Posted on {dispatch.dispatched_at:%d %B %Y} by {dispatch.carrier}.",
            "tracking": dispatch.tracking_reference,
        }
    if order.payment is PaymentState.REFUNDED or order.fulfilment is FulfilmentState.CANCELLED:
        return {"headline": "Your order was cancelled", "detail": "Any payment has been refunded to your card."}
    if order.fulfilment is FulfilmentState.RETURNED:
        return {
            "headline": "Your kit came back to us",
            "detail": "The parcel was returned undelivered. We will be in touch to check your address.",
        }
    if order.fulfilment is FulfilmentState.REJECTED:
        return {
            "headline": "There is a problem with your order",
            "detail": "The kit maker could not send your kit. We will be in touch.",
        }
    if order.is_confirmed:
        return {"headline": "Your order is confirmed", "detail": "The kit maker will post your kit soon."}
    if order.state is OrderState.PLACED:
        return {"headline": "We are waiting for your payment to be confirmed", "detail": "Check again later."}
    return {"headline": "Your order did not go ahead", "detail": "You have not been charged."}
