"""A change to an order: who made it, what it asks of the world, and the log line it leaves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from .delivery import DeliveryDetails
from .orders import HistoryEntry, Order


class Effect(str, Enum):
    RELEASE_TO_MANUFACTURER = "release_to_manufacturer"
    RELEASE_CLAIM = "release_claim"  # the certificate may order again
    RECLAIM = "reclaim"  # a late payment takes the certificate's kit after all
    CANCEL_FULFILMENT = "cancel_fulfilment"
    EMAIL_DISPATCH = "email_dispatch"  # the dispatch email joins the order's mail outbox, in the same write


# The holder's emails, by kind (each a template in templates/email/), and the effects that make them due.
CONFIRMATION_EMAIL, DISPATCH_EMAIL = "confirmation", "dispatch"
EMAIL_EFFECTS = {Effect.EMAIL_DISPATCH: DISPATCH_EMAIL}


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


def record_change(order: Order, source: Source, now: datetime, change: str, effects=(), **fields) -> Outcome:
    entry = HistoryEntry(now, source.actor, change, source.event_id)
    seen = order.processed_events | ({source.event_id} if source.event_id else set())
    updated = replace(order, history=order.history + (entry,), processed_events=seen, **fields)
    return Outcome(updated, frozenset(effects))


def unchanged(order: Order) -> Outcome:
    """A repeat of something already done (an idempotent call): no write, no log line."""
    return Outcome(order, changed=False)


ERASED = "[erased]"


def erase_personal_data(order: Order, source: Source, now: datetime, why: str) -> Outcome:
    """Name, address and email go; the reference, the money and the states (what finance and the
    audit trail need) stay. Idempotent: an erased order is left as it is."""
    if order.erased_at is not None:
        return unchanged(order)
    blank = DeliveryDetails(
        full_name=ERASED,
        address_line_1=ERASED,
        address_line_2="",
        town=ERASED,
        postcode="",
        email="",
        contact_consent=False,
    )
    return record_change(order, source, now, f"personal data erased ({why})", delivery=blank, erased_at=now)
