"""DynamoDB through PynamoDB: the register, orders and certificate claims.

Model classes are built per configuration (table names and endpoint come from Settings), so
nothing is bound to a table or an endpoint at import time and every test gets fresh classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from ..domain.delivery import DeliveryDetails
from ..domain.errors import CertificateAlreadyClaimed, OrderNotFound, PaymentMismatch
from ..domain.money import Money
from ..domain.orders import FulfilmentState, Order, OrderState, PaymentState, check_payment_matches
from ..domain.register import CertificateStatus, RegisterEntry
from ..ports import CertificateLookup, CheckoutSession
from ..timeutil import from_iso, to_iso

log = logging.getLogger("tracekit")


@dataclass(frozen=True)
class Tables:
    register: str
    orders: str
    claims: str
    region: str
    host: str | None = None

    def meta(self, table_name: str) -> type:
        """A PynamoDB Meta for one table, at this region and endpoint."""
        return type("Meta", (), {"table_name": table_name, "region": self.region, "host": self.host})


@dataclass(frozen=True)
class Models:
    register: type[Model]
    orders: type[Model]
    claims: type[Model]
    connection: Connection


def build_models(tables: Tables) -> Models:
    """PynamoDB models bound to the configured tables; attribute names match infra/resources.json."""

    class RegisterRecord(Model):
        Meta = tables.meta(tables.register)

        reference_key = UnicodeAttribute(hash_key=True)
        postcode_mac = UnicodeAttribute()
        status = UnicodeAttribute()
        expires_on = UnicodeAttribute()
        free_kit = BooleanAttribute()

    class ClaimRecord(Model):
        Meta = tables.meta(tables.claims)

        certificate_key = UnicodeAttribute(hash_key=True)
        kits = NumberAttribute(default=0)

    class OrderRecord(Model):
        Meta = tables.meta(tables.orders)

        order_ref = UnicodeAttribute(hash_key=True)
        certificate_key = UnicodeAttribute()
        created_at = UnicodeAttribute()
        created_on = UnicodeAttribute()
        amount_pence = NumberAttribute()
        currency = UnicodeAttribute()
        eligibility_reason = UnicodeAttribute()
        full_name = UnicodeAttribute()
        address_line_1 = UnicodeAttribute()
        address_line_2 = UnicodeAttribute(null=True)
        town = UnicodeAttribute()
        postcode = UnicodeAttribute()
        email = UnicodeAttribute(null=True)
        order_state = UnicodeAttribute()
        payment_state = UnicodeAttribute()
        fulfilment_state = UnicodeAttribute()
        checkout_session_id = UnicodeAttribute(null=True)
        checkout_url = UnicodeAttribute(null=True)
        paid_at = UnicodeAttribute(null=True)
        released_at = UnicodeAttribute(null=True)
        processed_events = UnicodeSetAttribute(null=True)
        payment_flag = UnicodeAttribute(null=True)

    return Models(RegisterRecord, OrderRecord, ClaimRecord, Connection(region=tables.region, host=tables.host))


class DynamoRegister:
    """The holder register, keyed by HMAC of the certificate reference."""

    def __init__(self, models: Models):
        self._models = models

    def find(self, reference_key: str) -> CertificateLookup:
        """One TransactGetItems request reads the entry and its claim together."""
        register, claims = self._models.register, self._models.claims
        with TransactGet(connection=self._models.connection) as transaction:
            entry_future = transaction.get(register, reference_key)
            claim_future = transaction.get(claims, reference_key)
        return CertificateLookup(_entry_or_none(entry_future, register), _kits_claimed(claim_future, claims))

    def save_all(self, entries: Iterable[RegisterEntry]) -> int:
        """BatchWriteItem, 25 items a request (PynamoDB chunks and retries unprocessed items)."""
        written = 0
        with self._models.register.batch_write() as batch:
            for entry in entries:
                batch.save(self._record(entry))
                written += 1
        return written

    def _record(self, entry: RegisterEntry) -> Model:
        return self._models.register(
            entry.reference_key,
            postcode_mac=entry.postcode_mac,
            status=entry.status.value,
            expires_on=entry.expires_on.isoformat(),
            free_kit=entry.free_kit,
        )


def _entry_or_none(future, model: type[Model]) -> RegisterEntry | None:
    try:
        record = future.get()
    except model.DoesNotExist:
        return None
    return RegisterEntry(
        reference_key=record.reference_key,
        postcode_mac=record.postcode_mac,
        status=CertificateStatus(record.status),
        expires_on=date.fromisoformat(record.expires_on),
        free_kit=bool(record.free_kit),
    )


def _kits_claimed(future, model: type[Model]) -> int:
    try:
        return int(future.get().kits or 0)
    except model.DoesNotExist:
        return 0


class DynamoOrders:
    """Orders, and the per-certificate claim that enforces the campaign's kit limit."""

    def __init__(self, models: Models):
        self._models = models

    def create_claiming_certificate(self, order: Order, kits_per_certificate: int) -> None:
        """One TransactWriteItems: the claim's conditional increment and the order's put."""
        claims, orders = self._models.claims, self._models.orders
        try:
            with TransactWrite(connection=self._models.connection) as transaction:
                transaction.save(_order_record(orders, order), condition=orders.order_ref.does_not_exist())
                transaction.update(
                    claims(order.certificate_key),
                    actions=[claims.kits.add(1)],
                    condition=claims.kits.does_not_exist() | (claims.kits < kits_per_certificate),
                )
        except TransactWriteError as exc:
            if _failed_conditions(exc)[-1]:
                raise CertificateAlreadyClaimed() from None
            raise

    def get(self, reference: str) -> Order:
        try:
            return _order_from(self._models.orders.get(reference, consistent_read=True))
        except self._models.orders.DoesNotExist:
            raise OrderNotFound(reference) from None

    def record_checkout(self, reference: str, session: CheckoutSession) -> None:
        orders = self._models.orders
        orders(reference).update(
            actions=[orders.checkout_session_id.set(session.id), orders.checkout_url.set(session.url)],
            condition=orders.order_ref.exists(),
        )

    def mark_paid_once(self, reference: str, event_id: str, paid: Money, now: datetime) -> Order:
        """The event id is recorded in the same conditional write that marks the order paid."""
        orders = self._models.orders
        record = orders(reference)
        try:
            record.update(
                actions=[
                    orders.order_state.set(OrderState.CONFIRMED.value),
                    orders.payment_state.set(PaymentState.PAID.value),
                    orders.paid_at.set(to_iso(now)),
                    orders.processed_events.add({event_id}),
                ],
                condition=(orders.payment_state == PaymentState.AWAITING.value)
                & (orders.amount_pence == paid.pence)
                & (orders.currency == paid.currency)
                & ~orders.processed_events.contains(event_id),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self._already_handled(reference, event_id, paid)
        return _order_from(record)

    def _already_handled(self, reference: str, event_id: str, paid: Money) -> Order:
        """Off the happy path: a redelivery, a payment in another state, or money that does not match."""
        order = self.get(reference)
        if order.payment is PaymentState.AWAITING:
            try:
                check_payment_matches(order, paid)
            except PaymentMismatch:
                self._flag(reference, f"mismatch:{event_id}")
                raise
        return order

    def _flag(self, reference: str, flag: str) -> None:
        orders = self._models.orders
        orders(reference).update(actions=[orders.payment_flag.set(flag)])

    def abandon(self, reference: str) -> None:
        """One transaction: the order is cancelled and the certificate's claim decremented."""
        claims, orders = self._models.claims, self._models.orders
        order = self.get(reference)
        try:
            with TransactWrite(connection=self._models.connection) as transaction:
                transaction.update(
                    orders(reference),
                    actions=[orders.order_state.set(OrderState.CANCELLED.value)],
                    condition=(orders.order_state == OrderState.PLACED.value)
                    & (orders.payment_state == PaymentState.AWAITING.value),
                )
                transaction.update(
                    claims(order.certificate_key), actions=[claims.kits.add(-1)], condition=claims.kits > 0
                )
        except TransactWriteError:
            # Already abandoned, or paid in the meantime: either way the claim stands as it should.
            log.info("order not abandoned", extra={"order_reference": reference})

    def mark_released(self, reference: str, now: datetime) -> None:
        orders = self._models.orders
        try:
            orders(reference).update(
                actions=[
                    orders.fulfilment_state.set(FulfilmentState.RELEASED.value),
                    orders.released_at.set(to_iso(now)),
                ],
                condition=orders.fulfilment_state == FulfilmentState.NOT_RELEASED.value,
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            # Already released by an earlier delivery: nothing to do.


def _failed_conditions(exc: TransactWriteError) -> list[bool]:
    """Per transaction item (puts first, then updates): did its condition fail?"""
    reasons = exc.cancellation_reasons or []
    return [bool(reason and reason.code == "ConditionalCheckFailed") for reason in reasons] or [False]


def _order_record(model: type[Model], order: Order) -> Model:
    delivery = order.delivery
    return model(
        order.reference,
        certificate_key=order.certificate_key,
        created_at=to_iso(order.created_at),
        created_on=order.created_at.date().isoformat(),
        amount_pence=order.amount.pence,
        currency=order.amount.currency,
        eligibility_reason=order.eligibility_reason,
        full_name=delivery.full_name,
        address_line_1=delivery.address_line_1,
        address_line_2=delivery.address_line_2 or None,
        town=delivery.town,
        postcode=delivery.postcode,
        email=delivery.email or None,
        order_state=order.state.value,
        payment_state=order.payment.value,
        fulfilment_state=order.fulfilment.value,
    )


def _order_from(record: Model) -> Order:
    return Order(
        reference=record.order_ref,
        certificate_key=record.certificate_key,
        created_at=from_iso(record.created_at),
        amount=Money(int(record.amount_pence), record.currency),
        eligibility_reason=record.eligibility_reason,
        delivery=DeliveryDetails(
            full_name=record.full_name,
            address_line_1=record.address_line_1,
            address_line_2=record.address_line_2 or "",
            town=record.town,
            postcode=record.postcode,
            email=record.email or "",
        ),
        state=OrderState(record.order_state),
        payment=PaymentState(record.payment_state),
        fulfilment=FulfilmentState(record.fulfilment_state),
        checkout_session_id=record.checkout_session_id,
        checkout_url=record.checkout_url,
        paid_at=from_iso(record.paid_at) if record.paid_at else None,
        released_at=from_iso(record.released_at) if record.released_at else None,
        processed_events=frozenset(record.processed_events or ()),
    )
