"""DynamoDB through PynamoDB: the table models, and the register (orders: dynamodb_orders.py, whose
items dynamodb_order_items.py declares).

Model classes are built per configuration (table names and endpoint come from Settings), so
nothing is bound to a table or an endpoint at import time and every test gets fresh classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import MetaProtocol, Model

from .dynamodb_order_items import COLUMNS, VIEWS

log = logging.getLogger("tracekit")


@dataclass(frozen=True)
class Tables:
    register: str
    orders: str
    claims: str
    region: str
    host: str | None = None
    attempts: str = "attempts"

    def meta(self, table_name: str) -> MetaProtocol:
        """A PynamoDB Meta for one table, at this region and endpoint."""
        return model_meta(table_name, self.region, self.host)


def model_meta(table_name: str, region: str, host: str | None) -> MetaProtocol:
    """A PynamoDB Meta class. It has only these settings until the model's class is made, when
    PynamoDB fills in the rest (connection timeouts, retries...), so the cast to the full protocol."""
    return cast(MetaProtocol, type("Meta", (), {"table_name": table_name, "region": region, "host": host}))


@dataclass(frozen=True)
class Models:
    register: type[RegisterFields]
    orders: type[OrderFields]
    claims: type[ClaimFields]
    connection: Connection
    attempts: type[AttemptFields]
    register_pointer: type[RegisterPointerFields]


class AwaitingPaymentIndex(GlobalSecondaryIndex):
    """Sparse: only orders holding a certificate's claim while unpaid carry its keys."""

    class Meta:
        index_name = "awaiting-payment"
        projection = KeysOnlyProjection()

    awaiting_payment = UnicodeAttribute(hash_key=True)
    hold_until = UnicodeAttribute(range_key=True)


class RelayPendingIndex(GlobalSecondaryIndex):
    """Sparse: confirmed orders whose fulfilment message has not gone yet (the outbox)."""

    class Meta:
        index_name = "relay-pending"
        projection = KeysOnlyProjection()

    relay_pending = UnicodeAttribute(hash_key=True)
    relay_since = UnicodeAttribute(range_key=True)


# What a parcel needs of the recipient: the only personal data the kit maker's list projects.
RECIPIENT_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode")


class OpenFulfilmentsIndex(GlobalSecondaryIndex):
    """Sparse, oldest first: what the manufacturer may see. Its projection holds only the fields a
    parcel needs, so a query on it cannot leak anything else."""

    class Meta:
        index_name = "open-fulfilments"
        projection = IncludeProjection([*RECIPIENT_FIELDS, "fulfilment_state", "relay_since", "fulfilment_attempt"])

    fulfilment_open = UnicodeAttribute(hash_key=True)
    released_at = UnicodeAttribute(range_key=True)


class CancellationsIndex(GlobalSecondaryIndex):
    """Sparse: fulfilments cancelled after release that the manufacturer has not acknowledged, with
    the attempt projected (the cancelled fulfilment's id)."""

    class Meta:
        index_name = "fulfilment-cancellations"
        projection = IncludeProjection(["fulfilment_attempt"])

    cancellation_pending = UnicodeAttribute(hash_key=True)
    cancelled_at = UnicodeAttribute(range_key=True)


class AmendmentsIndex(GlobalSecondaryIndex):
    """Sparse, oldest amendment first: open fulfilments whose address the holder changed and the
    kit maker has not acknowledged. Like the open list, it projects only what a parcel needs."""

    class Meta:
        index_name = "fulfilment-amendments"
        projection = IncludeProjection([*RECIPIENT_FIELDS, "amendments_issued"])

    amendment_pending = UnicodeAttribute(hash_key=True)
    amended_at = UnicodeAttribute(range_key=True)


FINANCE_FIELDS = [
    "order_state",
    "payment_state",
    "fulfilment_state",
    "amount_pence",
    "currency",
    "payment_intent_id",
    "refunded_pence",
    "dispute_status",
    # the kit maker's statement: the kind of kit and its times, nothing personal
    "eligibility_reason",
    "released_at",
    "dispatched_at",
    "cancelled_at",
    # replacements: which attempt is current, and the superseded ones (ids, states, dispatch times)
    "fulfilment_attempt",
    "earlier_fulfilments",
    # the reconciliation: who cancelled an order
    "cancelled_by_holder",
]


class CreatedDayIndex(GlobalSecondaryIndex):
    """Orders by UTC creation day: finance reads a period by querying day by day, never scanning.
    Its projection holds only the finance fields: nothing personal."""

    class Meta:
        index_name = "by-created-day"
        projection = IncludeProjection(FINANCE_FIELDS)

    created_on = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


SWEEP_GROUP = "attempts"


class ExpiryIndex(GlobalSecondaryIndex):
    """Attempt counters by expiry: the sweep's work list (moto, unlike DynamoDB, never expires TTLs)."""

    class Meta:
        index_name = "by-expiry"
        projection = KeysOnlyProjection()

    sweep_group = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class ErasureDueIndex(GlobalSecondaryIndex):
    """Sparse: orders whose recipient's name and address are still held, by when they must go."""

    class Meta:
        index_name = "erasure-due"
        projection = KeysOnlyProjection()

    erasure_due = UnicodeAttribute(hash_key=True)
    erase_after = UnicodeAttribute(range_key=True)


class SupportNeededIndex(GlobalSecondaryIndex):
    """Sparse: orders that need a person (Order.needs_support), oldest first; keys alone."""

    class Meta:
        index_name = "support-needed"
        projection = KeysOnlyProjection()

    support_needed = UnicodeAttribute(hash_key=True)
    support_since = UnicodeAttribute(range_key=True)


class RecipientIndex(GlobalSecondaryIndex):
    """Sparse: orders by their recipient's keyed postcode and surname (RegisterKeys.recipient_key),
    present while the name and address are held; support's search by postcode and surname. Keys
    alone: what it finds is opened, if at all, by an audited read of the order."""

    class Meta:
        index_name = "recipient-lookup"
        projection = KeysOnlyProjection()

    recipient_key = UnicodeAttribute(hash_key=True)


class MailRetryIndex(GlobalSecondaryIndex):
    """Sparse: orders with an email that failed to send, by when to try again, with the kinds due
    and the failures so far projected (the retry reads nothing else from the index)."""

    class Meta:
        index_name = "mail-retry"
        projection = IncludeProjection(["mail_retry_kinds", "mail_attempts"])

    mail_retry = UnicodeAttribute(hash_key=True)
    mail_retry_after = UnicodeAttribute(range_key=True)


class HistoryRecord(MapAttribute):
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    change = UnicodeAttribute()
    stripe_event_id = UnicodeAttribute(null=True)


class OrderFields(Model):
    """The orders table's fixed attributes: its version, log and events seen, its mail outbox and
    its indexes. The order's fields and views (order_attributes) are added per model, at runtime."""

    version = NumberAttribute(default=0)
    processed_events = UnicodeSetAttribute(null=True)
    history = ListAttribute(of=HistoryRecord, default=list)
    # the mail outbox: the kinds of email due, when, and the failures since the last success
    mail_retry = UnicodeAttribute(null=True)
    mail_retry_after = UnicodeAttribute(null=True)
    mail_retry_kinds = UnicodeSetAttribute(null=True)
    mail_attempts = NumberAttribute(null=True)
    # support's search by postcode and surname: written beside the name and address, removed with them
    recipient_key = UnicodeAttribute(null=True)
    recipient_index = RecipientIndex()
    created_day_index = CreatedDayIndex()
    awaiting_payment_index = AwaitingPaymentIndex()
    relay_pending_index = RelayPendingIndex()
    open_fulfilments_index = OpenFulfilmentsIndex()
    cancellations_index = CancellationsIndex()
    amendments_index = AmendmentsIndex()
    erasure_due_index = ErasureDueIndex()
    mail_retry_index = MailRetryIndex()
    support_needed_index = SupportNeededIndex()
    # Declared for the type checker only: order_attributes() adds them (from COLUMNS and VIEWS).
    order_ref: UnicodeAttribute
    released_at: UnicodeAttribute
    erase_after: UnicodeAttribute
    hold_until: UnicodeAttribute
    support_since: UnicodeAttribute


def order_attributes() -> dict[str, Attribute[Any]]:
    """The orders table's per-order attributes: the order's fields and views (dynamodb_order_items)."""
    return {
        **{column.name: column.attribute() for column in COLUMNS},
        **{name: UnicodeAttribute(null=True) for name in VIEWS},
    }


class RegisterFields(Model):
    """A register entry: one certificate in one generation of the register. The hash key is the
    generation and one of 8 shards of it (dynamodb_register.bucket), so a generation is read or
    deleted by querying 8 keys, never by scanning, and an import's writes spread over 8
    partition keys; the range key is the reference's HMAC."""

    bucket = UnicodeAttribute(hash_key=True)
    reference_key = UnicodeAttribute(range_key=True)
    postcode_mac = UnicodeAttribute()
    status = UnicodeAttribute()
    expires_on = UnicodeAttribute()
    free_kit = BooleanAttribute()


class RegisterPointerFields(Model):
    """The register's one pointer item, in the register's table: which generation is live, which
    is previous, and which may still hold entries. Switching is one conditional write to it."""

    bucket = UnicodeAttribute(hash_key=True)
    reference_key = UnicodeAttribute(range_key=True)
    live = NumberAttribute(null=True)
    previous = NumberAttribute(null=True)
    started = NumberAttribute(default=0)
    generations = NumberSetAttribute(null=True)
    live_entries = NumberAttribute(null=True)
    previous_entries = NumberAttribute(null=True)
    live_since = UnicodeAttribute(null=True)
    previous_since = UnicodeAttribute(null=True)


class ClaimFields(Model):
    """A certificate's claim: the kits ordered on it."""

    certificate_key = UnicodeAttribute(hash_key=True)
    kits = NumberAttribute(default=0)


class AttemptFields(Model):
    """A certificate check's attempt counter: attempts reserved (chalicelib.domain.throttle)."""

    attempt_key = UnicodeAttribute(hash_key=True)
    reserved = NumberAttribute(default=0)
    expires_at = NumberAttribute()  # epoch seconds: the table's TTL attribute
    sweep_group = UnicodeAttribute(default=SWEEP_GROUP)
    expiry_index = ExpiryIndex()


def build_models(tables: Tables) -> Models:
    """PynamoDB models bound to the configured tables; attribute names match infra/resources.json."""
    OrderRecord = type("OrderRecord", (OrderFields,), {"Meta": tables.meta(tables.orders), **order_attributes()})

    class RegisterRecord(RegisterFields):
        Meta = tables.meta(tables.register)

    class ClaimRecord(ClaimFields):
        Meta = tables.meta(tables.claims)

    class AttemptRecord(AttemptFields):
        Meta = tables.meta(tables.attempts)

    class RegisterPointerRecord(RegisterPointerFields):
        Meta = tables.meta(tables.register)

    connection = Connection(region=tables.region, host=tables.host)
    return Models(RegisterRecord, OrderRecord, ClaimRecord, connection, AttemptRecord, RegisterPointerRecord)
