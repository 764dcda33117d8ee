"""Orders: three orthogonal states (order, payment, fulfilment) and an append-only history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from .delivery import DeliveryDetails
from .references import fulfilment_id_of
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
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    FAILED = "failed"
    NOT_TAKEN = "not_taken"  # the order ended (expired, abandoned) before any money was taken


# Payment states in which Stripe holds (or held) the holder's money.
MONEY_TAKEN = frozenset(
    {PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED, PaymentState.DISPUTED}
)


class FulfilmentState(str, Enum):
    NOT_RELEASED = "not_released"
    RELEASED = "released"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RETURNED = "returned"  # posted, and came back to the kit maker undelivered


# A full refund in these states still stops the kit going out.
BEFORE_DISPATCH = frozenset({FulfilmentState.NOT_RELEASED, FulfilmentState.RELEASED, FulfilmentState.ACCEPTED})


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an order's log: who or what changed it, when, and from which Stripe event."""

    at: datetime
    actor: str
    change: str
    stripe_event_id: str | None = None


@dataclass(frozen=True)
class Dispatch:
    """What the manufacturer reports when a kit goes out."""

    kit_code: str
    carrier: str
    tracking_reference: str
    dispatched_at: datetime


@dataclass(frozen=True)
class EarlierFulfilment:
    """A fulfilment of the order that a later attempt superseded (a replacement for a lost kit):
    its id, the state it ended in, and what the kit maker reported of it."""

    fulfilment_id: str
    state: FulfilmentState
    released_at: datetime | None
    dispatch: Dispatch | None
    ended_at: datetime
    reason: str | None = None


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
    checkout_expires_at: datetime | None = None
    checkout_attempt: int = 0
    hold_until: datetime | None = None
    payment_intent_id: str | None = None
    payment_processing: bool = False
    paid_at: datetime | None = None
    refunded_pence: int = 0
    dispute_status: str | None = None
    payment_flag: str | None = None
    released_at: datetime | None = None
    accepted_at: datetime | None = None
    dispatch: Dispatch | None = None
    rejection_reason: str | None = None
    rejected_at: datetime | None = None
    returned_at: datetime | None = None
    return_reason: str | None = None  # the kit maker's words, for support only, never the holder
    cancelled_at: datetime | None = None
    cancellation_acknowledged: bool = False
    erased_at: datetime | None = None
    cancelled_by_holder: bool = False
    cancelled_by_support: bool = False  # support ended a rejected or returned order (resolve_by_cancelling)
    # Attempts at the fulfilment: the current one (its id is fulfilment_id) and those it superseded.
    fulfilment_attempt: int = 1
    earlier_fulfilments: tuple[EarlierFulfilment, ...] = ()
    # A kit that has not arrived: the holder's request, and support's decision on it.
    replacement_requested_at: datetime | None = None
    replacement_resolved_at: datetime | None = None
    replacement_decline_reason: str | None = None  # support's words, which the holder is told
    replacements_approved: int = 0
    # The holder's changes of address after release: each is an amendment the kit maker is owed,
    # numbered 1, 2, ...; the last sent on the queue, and the last the kit maker acknowledged.
    amendments_issued: int = 0
    amendment_sent: int = 0
    amendment_acknowledged: int = 0
    amended_at: datetime | None = None
    version: int = 0
    processed_events: frozenset[str] = field(default_factory=frozenset)
    history: tuple[HistoryEntry, ...] = ()

    @property
    def fulfilment_id(self) -> str:
        """The manufacturer's id for this order's fulfilment: one per order, derived, never reused."""
        return fulfilment_id_of(self.reference, self.fulfilment_attempt)

    def replacement_allowed_from(self, not_before_days: int) -> datetime | None:
        """From when the holder may report the posted kit missing; None while it is not posted."""
        if self.fulfilment is not FulfilmentState.DISPATCHED or self.dispatch is None:
            return None
        return self.dispatch.dispatched_at + timedelta(days=not_before_days)

    @property
    def replacement_open(self) -> bool:
        """The holder reported the kit has not arrived, and support has not yet decided."""
        return self.replacement_requested_at is not None and self.replacement_resolved_at is None

    @property
    def confirmed_at(self) -> datetime | None:
        """When the fulfilment order came into being: at placing (free) or payment (paid)."""
        return (self.paid_at or self.created_at) if self.is_confirmed else None

    def personal_data_until(self, retention: timedelta) -> datetime | None:
        """When the recipient's name and address must go: `retention` after the kit went out (as
        long as returns need), or after the order ended without one. None while it is in progress,
        rejected or returned to sender and not yet resolved (support needs the address to resolve
        it; once it does, the usual period runs from then), or already erased."""
        if self.erased_at is not None or self.needs_support:
            return None
        if self.replacement_open:  # support needs the address to decide on a replacement
            return None
        if self.fulfilment is FulfilmentState.DISPATCHED and self.dispatch:
            return self.dispatch.dispatched_at + retention
        if self.fulfilment is FulfilmentState.CANCELLED:
            return (self.cancelled_at or self.released_at or self.created_at) + retention
        if self.state in (OrderState.EXPIRED, OrderState.CANCELLED) and not self.is_confirmed:
            return self.created_at + retention
        return None

    @property
    def is_free(self) -> bool:
        return self.amount.is_free

    @property
    def is_confirmed(self) -> bool:
        return self.state is OrderState.CONFIRMED

    @property
    def awaits_payment(self) -> bool:
        return self.state is OrderState.PLACED and self.payment is PaymentState.AWAITING

    @property
    def awaits_release(self) -> bool:
        """Confirmed but not yet on the queue: the relay's work list (the outbox)."""
        return self.is_confirmed and self.fulfilment is FulfilmentState.NOT_RELEASED

    @property
    def open_for_manufacturer(self) -> bool:
        return self.is_confirmed and self.fulfilment in (FulfilmentState.RELEASED, FulfilmentState.ACCEPTED)

    @property
    def cancellation_to_tell(self) -> bool:
        """Cancelled after the manufacturer may have seen it, and not yet acknowledged by them."""
        return (
            self.fulfilment is FulfilmentState.CANCELLED
            and self.released_at is not None
            and not self.cancellation_acknowledged
        )

    @property
    def address_changeable(self) -> bool:
        """Until the kit maker accepts the order: while it awaits payment, or is confirmed and either
        not yet released (the relay will send the new address) or released (an amendment is owed)."""
        before_acceptance = (FulfilmentState.NOT_RELEASED, FulfilmentState.RELEASED)
        return self.awaits_payment or (self.is_confirmed and self.fulfilment in before_acceptance)

    @property
    def amendment_unsent(self) -> bool:
        """An amendment of the address the queue has not taken yet, for a fulfilment still open
        (the relay's work list, beside the unreleased orders)."""
        return self.open_for_manufacturer and self.amendments_issued > self.amendment_sent

    @property
    def amendment_to_tell(self) -> bool:
        """An amendment of the address the kit maker has not acknowledged, while it is still open."""
        return self.open_for_manufacturer and self.amendments_issued > self.amendment_acknowledged

    @property
    def needs_support(self) -> bool:
        """On support's work list: a fulfilment that cannot go on without a person (the kit maker
        rejected it, or tracekit could not send it; or the parcel came back; or the holder reports
        it has not arrived) while the order still names someone."""
        waiting = (FulfilmentState.REJECTED, FulfilmentState.RETURNED)
        return (self.fulfilment in waiting or self.replacement_open) and self.erased_at is None

    @property
    def support_since(self) -> datetime | None:
        """When the order came onto support's list (the list's order), None while it is not on it."""
        if not self.needs_support:
            return None
        if self.replacement_open:
            return self.replacement_requested_at
        return self.returned_at or self.rejected_at or self.released_at or self.created_at

    def checkout_open_at(self, now: datetime) -> bool:
        """An open session a holder can still be sent to (with a minute to spare)."""
        return bool(
            self.checkout_url and self.checkout_expires_at and self.checkout_expires_at > now + timedelta(minutes=1)
        )
