"""A change to an order: who made it, what it asks of the world, and the log line it leaves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable
from enum import Enum

from .orders import HistoryEntry, Order


class Effect(str, Enum):
    """What a change owes the world beyond the order's own record, and who carries it out."""

    # services.changes: the fulfilment message goes on the queue, then `release` records it.
    RELEASE_TO_MANUFACTURER = "release_to_manufacturer"
    # the store, in the change's own transaction: the certificate's claim gives back its kit (it
    # may order again) or, for a payment honoured after the order lapsed, takes it back.
    RELEASE_CLAIM = "release_claim"
    RECLAIM = "reclaim"
    # the store puts the email in the order's mail outbox in the change's own write, held by the
    # caller for a lease; services.changes then sends it (the relay's schedule, if the caller dies).
    EMAIL_CONFIRMATION = "email_confirmation"
    EMAIL_DISPATCH = "email_dispatch"
    EMAIL_CANCELLATION = "email_cancellation"
    EMAIL_RETURNED = "email_returned"
    EMAIL_REJECTED = "email_rejected"
    EMAIL_SENDING_AGAIN = "email_sending_again"
    EMAIL_REPLACEMENT_REQUESTED = "email_replacement_requested"
    EMAIL_REPLACEMENT_APPROVED = "email_replacement_approved"
    EMAIL_REPLACEMENT_DECLINED = "email_replacement_declined"
    EMAIL_ADDRESS_CHANGED = "email_address_changed"
    # services.changes: the address amendment goes on the queue, then `record_amendment_sent`
    # records it (the relay sends any a crash left unsent: lifecycle.outstanding).
    SEND_AMENDMENT = "send_amendment"
    # services.changes: the rest of the payment goes back to the holder through the operators'
    # refund path (services.payments.refund_order), whose reconciliation records it.
    REFUND_IN_FULL = "refund_in_full"
    # services.changes: the order's Checkout Session is expired at Stripe, so it takes no payment.
    CLOSE_CHECKOUT = "close_checkout"


# The holder's emails, by kind (each a template in templates/email/), and the effects that make them due.
CONFIRMATION_EMAIL, DISPATCH_EMAIL = "confirmation", "dispatch"
CANCELLATION_EMAIL, RETURNED_EMAIL = "cancellation", "returned"
REJECTED_EMAIL, SENDING_AGAIN_EMAIL = "rejected", "sending_again"
REPLACEMENT_REQUESTED_EMAIL = "replacement_requested"
REPLACEMENT_APPROVED_EMAIL, REPLACEMENT_DECLINED_EMAIL = "replacement_approved", "replacement_declined"
ADDRESS_CHANGED_EMAIL = "address_changed"
EMAIL_EFFECTS = {
    Effect.EMAIL_CONFIRMATION: CONFIRMATION_EMAIL,
    Effect.EMAIL_DISPATCH: DISPATCH_EMAIL,
    Effect.EMAIL_CANCELLATION: CANCELLATION_EMAIL,
    Effect.EMAIL_RETURNED: RETURNED_EMAIL,
    Effect.EMAIL_REJECTED: REJECTED_EMAIL,
    Effect.EMAIL_SENDING_AGAIN: SENDING_AGAIN_EMAIL,
    Effect.EMAIL_REPLACEMENT_REQUESTED: REPLACEMENT_REQUESTED_EMAIL,
    Effect.EMAIL_REPLACEMENT_APPROVED: REPLACEMENT_APPROVED_EMAIL,
    Effect.EMAIL_REPLACEMENT_DECLINED: REPLACEMENT_DECLINED_EMAIL,
    Effect.EMAIL_ADDRESS_CHANGED: ADDRESS_CHANGED_EMAIL,
}


def emails_owed(effects: frozenset[Effect]) -> frozenset[str]:
    """The kinds of email a change's effects make due."""
    return frozenset(EMAIL_EFFECTS[e] for e in effects if e in EMAIL_EFFECTS)


@dataclass(frozen=True)
class Source:
    """Who or what reports the fact: 'stripe' with its event id, an operator, or the system."""

    actor: str
    event_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    order: Order
    effects: frozenset[Effect] = frozenset()
    changed: bool = True


def noted(order: Order, source: Source, now: datetime, change: str) -> Outcome:
    """Nothing changes but the log, which shows the fact arrived and why it changed nothing."""
    return record_change(order, source, now, change)


def record_change(
    order: Order, source: Source, now: datetime, change: str, effects: Iterable[Effect] = (), **fields: Any
) -> Outcome:
    entry = HistoryEntry(now, source.actor, change, source.event_id)
    seen = order.processed_events | ({source.event_id} if source.event_id else frozenset())
    updated = replace(order, history=order.history + (entry,), processed_events=seen, **fields)
    return Outcome(updated, frozenset(effects))


def unchanged(order: Order) -> Outcome:
    """A repeat of something already done (an idempotent call): no write, no log line."""
    return Outcome(order, changed=False)


@dataclass(frozen=True)
class GuardedChange:
    """A change whose outcome follows from a few of the order's fields, so a store can make it in
    one conditional write without reading the order: if the order has every value in `requires`
    (and has not seen the entry's event), it takes the values in `sets`, logs `entry` and owes
    `effects`. tests/unit/test_lifecycle.py proves it the same as the general transition."""

    requires: dict[str, Any]
    sets: dict[str, Any]
    entry: HistoryEntry
    effects: frozenset[Effect]
    template: Order  # an order as the lifecycle makes one that the change may meet

    def sketch(self) -> tuple[Order, Order]:
        """An order that meets `requires`, and the same order changed. What differs between the two
        is what the change writes, whatever the order's other fields hold (which the test proves)."""
        before = replace(self.template, **self.requires)
        return before, replace(before, **self.sets)

    def met_by(self, order: Order) -> bool:
        """Whether the order has every value the change requires (the store checks it as a condition)."""
        return all(getattr(order, field) == value for field, value in self.requires.items())

    def applied_to(self, order: Order) -> Outcome:
        """What the change makes of an order that meets `requires` (the fake store's write)."""
        seen = order.processed_events | {self.entry.stripe_event_id or ""}
        changed = replace(order, **self.sets, history=order.history + (self.entry,), processed_events=seen)
        return Outcome(changed, self.effects)


@dataclass(frozen=True)
class Transition:
    """A row of the lifecycle table: the transition, the fact and who reports it, what it may owe."""

    name: str
    fact: str
    reported_by: str
    effects: frozenset[Effect]

    @classmethod
    def row(cls, name: str, fact: str, by: str, *effects: Effect) -> Transition:
        return cls(name, fact, by, frozenset(effects))


def _row(name: str, fact: str, by: str, *effects: Effect) -> Transition:
    return Transition(name, fact, by, frozenset(effects))
