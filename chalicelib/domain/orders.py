"""Orders and their three orthogonal states (order, payment, fulfilment)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from .delivery import DeliveryDetails
from .eligibility import Eligibility
from .errors import PaymentMismatch
from .money import Money


class OrderState(str, Enum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PaymentState(str, Enum):
    NOT_REQUIRED = "not_required"
    AWAITING = "awaiting"
    PAID = "paid"
    FAILED = "failed"


class FulfilmentState(str, Enum):
    NOT_RELEASED = "not_released"
    RELEASED = "released"


@dataclass(frozen=True)
class Order:
    reference: str
    certificate_key: str
    created_at: datetime
    amount: Money
    eligibility_reason: str
    delivery: DeliveryDetails
    state: OrderState
    payment: PaymentState
    fulfilment: FulfilmentState
    checkout_session_id: str | None = None
    checkout_url: str | None = None
    paid_at: datetime | None = None
    released_at: datetime | None = None
    processed_events: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_free(self) -> bool:
        return self.amount.is_free

    @property
    def is_confirmed(self) -> bool:
        return self.state is OrderState.CONFIRMED

    @property
    def awaits_release(self) -> bool:
        return self.is_confirmed and self.fulfilment is FulfilmentState.NOT_RELEASED


def place_order(
    reference: str, certificate_key: str, eligibility: Eligibility, delivery: DeliveryDetails, now: datetime
) -> Order:
    """A free order is confirmed at once; a paid one waits for Stripe."""
    free = eligibility.is_free
    return Order(
        reference=reference,
        certificate_key=certificate_key,
        created_at=now,
        amount=eligibility.price,
        eligibility_reason=eligibility.reason.value,
        delivery=delivery,
        state=OrderState.CONFIRMED if free else OrderState.PLACED,
        payment=PaymentState.NOT_REQUIRED if free else PaymentState.AWAITING,
        fulfilment=FulfilmentState.NOT_RELEASED,
    )


def check_payment_matches(order: Order, paid: Money) -> None:
    """Money that does not match the order is flagged, never fulfilled."""
    if paid != order.amount:
        raise PaymentMismatch(f"order {order.reference}: expected {order.amount}, Stripe reported {paid}")


def mark_paid(order: Order, paid: Money, event_id: str, now: datetime) -> Order:
    check_payment_matches(order, paid)
    return replace(
        order,
        state=OrderState.CONFIRMED,
        payment=PaymentState.PAID,
        paid_at=now,
        processed_events=order.processed_events | {event_id},
    )
