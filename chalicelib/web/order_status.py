"""What the holder's order page says: the true state, in one word the template switches on."""

from __future__ import annotations

from datetime import date

from ..domain.orders import BEFORE_DISPATCH, FulfilmentState, Order, OrderState, PaymentState


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


# A kit rejected or returned: support resolves it (the holder is never shown the kit maker's reason).
WHAT_HAPPENS_NEXT = (
    "You do not need to order again. Our team will contact you to check your delivery address "
    "and agree what happens next: we will send your kit again, or cancel the order and refund any payment."
)


def holder_view(order: Order) -> dict:
    """The status page's headline and detail: what the holder needs, in plain words."""
    dispatch = order.dispatch
    if order.fulfilment is FulfilmentState.DISPATCHED and dispatch:
        return {
            "headline": "Your kit has been posted",
            "detail": f"Posted on {gov_uk_date(dispatch.dispatched_at)} by {dispatch.carrier}.",
            "tracking": dispatch.tracking_reference,
        }
    if order.payment is PaymentState.REFUNDED or order.fulfilment is FulfilmentState.CANCELLED:
        return {"headline": "Your order was cancelled", "detail": "Any payment has been refunded to your card."}
    if order.fulfilment is FulfilmentState.RETURNED:
        return {
            "headline": "Your kit came back to us",
            "detail": "The parcel was returned to us undelivered. " + WHAT_HAPPENS_NEXT,
            "contact": True,
        }
    if order.fulfilment is FulfilmentState.REJECTED:
        return {
            "headline": "There is a problem with your order",
            "detail": "We could not send your kit. " + WHAT_HAPPENS_NEXT,
            "contact": True,
        }
    if order.is_confirmed:
        return {"headline": "Your order is confirmed", "detail": "The kit maker will post your kit soon."}
    if order.state is OrderState.PLACED:
        return {"headline": "We are waiting for your payment to be confirmed", "detail": "Check again later."}
    if order.state is OrderState.EXPIRED:
        return {
            "headline": "Your order was not completed",
            "detail": "The time to pay ran out. You have not been charged, and you can order again.",
        }
    return {"headline": "Your order did not go ahead", "detail": "You have not been charged."}


def can_cancel(order: Order) -> bool:
    """Whether the status page offers to cancel: until dispatch (lifecycle.cancel_by_holder)."""
    return order.awaits_payment or (order.is_confirmed and order.fulfilment in BEFORE_DISPATCH)


def gov_uk_date(when: date) -> str:
    """A date as GOV.UK writes it: 1 December 2026 (strftime's %d would say 01)."""
    return f"{when.day} {when:%B %Y}"


def masked_email(email: str) -> str:
    """s***@example.com: enough for the holder to recognise their address on a shared screen."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"
