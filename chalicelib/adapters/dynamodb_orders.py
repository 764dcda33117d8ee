"""Orders and certificate claims in DynamoDB.

Every change is a conditional write: a new order and its claim in one transaction; the paid
webhook's happy path in one conditional UpdateItem that returns the order; everything else an
optimistic write guarded by the order's version, in a transaction with the claim when it moves.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Iterator

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..domain.changes import CONFIRMATION_EMAIL, EMAIL_EFFECTS
from ..domain.delivery import DeliveryDetails
from ..domain.errors import CertificateAlreadyClaimed, ConcurrentChange, InvalidInput, OrderAlreadyExists, OrderNotFound
from ..domain.fulfilment import Cancellation, FulfilmentMessage, OpenFulfilment, Page, fulfilment_id_of
from ..domain.money import Money
from ..domain.orders import Dispatch, FulfilmentState, HistoryEntry, Order, OrderState, PaymentState
from ..domain.payments import Effect
from ..timeutil import from_iso, to_iso
from .dynamodb import Models

AWAITING = "yes"
DEFAULT_RETENTION = timedelta(days=30)
_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoOrders:
    def __init__(self, models: Models, retention: timedelta = DEFAULT_RETENTION):
        self._models = models
        self._retention = retention

    def create_claiming_certificate(self, order: Order, kits_per_certificate: int) -> None:
        """One TransactWriteItems: the order's put and the claim's conditional increment."""
        claims, orders = self._models.claims, self._models.orders
        try:
            with TransactWrite(connection=self._models.connection) as transaction:
                transaction.save(
                    order_record(orders, order, self._retention), condition=orders.order_ref.does_not_exist()
                )
                transaction.update(
                    claims(order.certificate_key),
                    actions=[claims.kits.add(1)],
                    condition=claims.kits.does_not_exist() | (claims.kits < kits_per_certificate),
                )
        except TransactWriteError as exc:
            order_exists, claim_full = (_failed_conditions(exc) + [False, False])[:2]
            if order_exists:
                raise OrderAlreadyExists(order.reference) from None
            if claim_full:
                raise CertificateAlreadyClaimed() from None
            raise

    def get(self, reference: str) -> Order:
        try:
            return _order(self._models.orders.get(reference, consistent_read=True))
        except self._models.orders.DoesNotExist:
            raise OrderNotFound(reference) from None

    def mark_paid_once(
        self, reference: str, event_id: str, paid: Money, payment_intent_id: str | None, now: datetime
    ) -> Order | None:
        """The paid webhook's happy path in one request: the order confirmed, the event recorded and
        the log appended in one conditional write that returns the order. None when the order is
        not simply awaiting this payment; the caller then takes the general path."""
        orders = self._models.orders
        record = orders(reference)
        entry = HistoryEntry(now, "stripe", "paid", event_id)
        try:
            record.update(
                actions=[
                    orders.order_state.set(OrderState.CONFIRMED.value),
                    orders.payment_state.set(PaymentState.PAID.value),
                    orders.paid_at.set(to_iso(now)),
                    orders.payment_processing.set(False),
                    *([orders.payment_intent_id.set(payment_intent_id)] if payment_intent_id else []),
                    orders.awaiting_payment.remove(),
                    orders.hold_until.remove(),
                    orders.relay_pending.set(AWAITING),  # the outbox entry, in the same write as the payment
                    orders.relay_since.set(to_iso(now)),
                    orders.processed_events.add({event_id}),
                    orders.history.set(orders.history.append([_history_record(entry)])),
                    orders.version.add(1),
                ],
                condition=(orders.order_state == OrderState.PLACED.value)
                & (orders.payment_state == PaymentState.AWAITING.value)
                & (orders.amount_pence == paid.pence)
                & (orders.currency == paid.currency)
                & (orders.refunded_pence == 0)
                & orders.dispute_status.does_not_exist()
                & ~orders.processed_events.contains(event_id),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _order(record)

    def save(self, before: Order, after: Order, effects: frozenset[Effect] = frozenset()) -> None:
        """Write `after` on condition nothing changed since `before` was read; move the claim with it."""
        orders, claims = self._models.orders, self._models.claims
        actions = _change_actions(orders, before, after, self._retention)
        emails = {EMAIL_EFFECTS[e] for e in effects if e in EMAIL_EFFECTS}
        if emails:  # due from the moment of the change, in the change's own write
            actions += _outbox_actions(orders, emails, after.history[-1].at)
        condition = orders.version == before.version
        try:
            if Effect.RELEASE_CLAIM in effects or Effect.RECLAIM in effects:
                with TransactWrite(connection=self._models.connection) as transaction:
                    transaction.update(orders(after.reference), actions=actions, condition=condition)
                    transaction.update(claims(after.certificate_key), **_claim_change(claims, effects))
            else:
                orders(after.reference).update(actions=actions, condition=condition)
        except (TransactWriteError, UpdateError) as exc:
            if _is_condition_failure(exc):
                raise ConcurrentChange(after.reference) from None
            raise

    def mark_released(self, reference: str, now: datetime, email_claimed_until: datetime | None = None) -> bool:
        """Record that the fulfilment message went and, if given a time, put the confirmation email
        in the order's outbox in the same write, claimed by this caller until then; a second call
        changes nothing (and says False)."""
        orders = self._models.orders
        entry = HistoryEntry(now, "system", "released to the manufacturer")
        try:
            orders(reference).update(
                actions=[
                    orders.fulfilment_state.set(FulfilmentState.RELEASED.value),
                    orders.released_at.set(to_iso(now)),
                    orders.relay_pending.remove(),
                    orders.fulfilment_open.set(AWAITING),
                    orders.history.set(orders.history.append([_history_record(entry)])),
                    orders.version.add(1),
                    *(
                        _outbox_actions(orders, {CONFIRMATION_EMAIL}, email_claimed_until)
                        if email_claimed_until
                        else []
                    ),
                ],
                condition=(orders.fulfilment_state == FulfilmentState.NOT_RELEASED.value)
                & (orders.order_state == OrderState.CONFIRMED.value),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def erasure_due(self, now: datetime) -> list[str]:
        """Orders whose recipient's personal data is due to go (sparse index, never a scan)."""
        index, erase_after = self._models.orders.erasure_due_index, self._models.orders.erase_after
        return [r.order_ref for r in index.query(AWAITING, range_key_condition=erase_after < to_iso(now))]

    def claim_due_notifications(self, reference: str, now: datetime, until: datetime):
        """One conditional UpdateItem: if the order's outbox is due by `now`, it is this caller's
        until `until` (its due time moves there). Returns (order, kinds, failures) or None."""
        orders = self._models.orders
        record = orders(reference)
        try:
            record.update(
                actions=[orders.mail_retry_after.set(to_iso(until))],
                condition=orders.mail_retry_after <= to_iso(now),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _order(record), frozenset(record.mail_retry_kinds or ()), int(record.mail_attempts or 0)

    def defer_notification(self, reference: str, kind: str, retry_after: datetime) -> None:
        """A send that failed, in one UpdateItem: counted, and due again at `retry_after`."""
        orders = self._models.orders
        orders(reference).update(
            actions=[
                orders.mail_retry_kinds.add({kind}),
                orders.mail_attempts.add(1),
                orders.mail_retry.set(AWAITING),
                orders.mail_retry_after.set(to_iso(retry_after)),
            ],
            condition=orders.order_ref.exists(),
        )

    def notifications_due(self, now: datetime) -> list[tuple[str, frozenset[str], int]]:
        """(reference, kinds, failures so far) of orders whose failed emails are due a retry."""
        orders = self._models.orders
        due = orders.mail_retry_index.query(AWAITING, range_key_condition=orders.mail_retry_after <= to_iso(now))
        return [(r.order_ref, frozenset(r.mail_retry_kinds or ()), int(r.mail_attempts or 0)) for r in due]

    def end_retry(self, reference: str, kind: str) -> None:
        """Sent or given up: the kind leaves the outbox. When it is the outbox's last kind (the common
        case) the order leaves the index in the same write; otherwise a second write takes out the
        kind alone. Both are conditional, so an unknown reference creates nothing."""
        orders = self._models.orders
        record = orders(reference)
        try:
            record.update(
                actions=[
                    orders.mail_retry_kinds.remove(),
                    orders.mail_retry.remove(),
                    orders.mail_retry_after.remove(),
                    orders.mail_attempts.remove(),
                ],
                condition=orders.mail_retry_kinds.contains(kind) & (size(orders.mail_retry_kinds) == 1),
            )
            return
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
        try:
            record.update(
                actions=[orders.mail_retry_kinds.delete({kind})], condition=orders.mail_retry_kinds.contains(kind)
            )
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise

    def contact_consents(self) -> Iterator[tuple[str, datetime]]:
        """(email, when consented) of every holder who ticked to be contacted and is not erased."""
        for record in self._models.orders.contact_consent_index.query(AWAITING):
            yield record.email, from_iso(record.created_at)

    def awaiting_past_hold(self, now: datetime) -> list[str]:
        """References of unpaid orders still holding a claim after their hold ran out (sparse index)."""
        index = self._models.orders.awaiting_payment_index
        hold_until = self._models.orders.hold_until
        return [r.order_ref for r in index.query(AWAITING, range_key_condition=hold_until < to_iso(now))]


def _outbox_actions(orders: type[Model], kinds: set[str], due: datetime) -> list:
    """The order's mail outbox (the sparse mail-retry index): these kinds, due at `due`."""
    return [
        orders.mail_retry_kinds.add(kinds),
        orders.mail_retry.set(AWAITING),
        orders.mail_retry_after.set(to_iso(due)),
    ]


def _claim_change(claims: type[Model], effects: frozenset[Effect]) -> dict:
    if Effect.RECLAIM in effects:  # paid money is honoured even past the limit
        return {"actions": [claims.kits.add(1)]}
    return {"actions": [claims.kits.add(-1)], "condition": claims.kits > 0}


def _is_condition_failure(exc: Exception) -> bool:
    if isinstance(exc, TransactWriteError):
        return any(_failed_conditions(exc))
    return getattr(exc, "cause_response_code", None) == _CONDITION_FAILED


def _failed_conditions(exc: TransactWriteError) -> list[bool]:
    """Per transaction item, in request order (puts, then updates): did its condition fail?"""
    reasons = exc.cancellation_reasons or []
    return [bool(reason and reason.code == "ConditionalCheckFailed") for reason in reasons]


# Fields a change may touch, mapped to how they are stored (None means remove the attribute). The
# sparse indexes' keys are derived here from the order's state, so no write can leave them stale.
def _mutable_fields(order: Order, retention: timedelta = DEFAULT_RETENTION) -> dict:
    awaiting = order.awaits_payment and order.hold_until is not None
    dispatch = order.dispatch
    delivery = order.delivery
    erase_after = order.personal_data_until(retention)
    return {
        "full_name": delivery.full_name,
        "address_line_1": delivery.address_line_1,
        "address_line_2": delivery.address_line_2 or None,
        "town": delivery.town,
        "postcode": delivery.postcode,
        "email": delivery.email or None,
        "contact_consent": True if delivery.contact_consent else None,
        "contact_consent_list": AWAITING if delivery.contact_consent and delivery.email else None,
        "erased_at": _iso_or_none(order.erased_at),
        "erasure_due": AWAITING if erase_after else None,
        "erase_after": _iso_or_none(erase_after),
        "order_state": order.state.value,
        "payment_state": order.payment.value,
        "fulfilment_state": order.fulfilment.value,
        "checkout_session_id": order.checkout_session_id,
        "checkout_url": order.checkout_url,
        "checkout_expires_at": _iso_or_none(order.checkout_expires_at),
        "checkout_attempt": order.checkout_attempt,
        "awaiting_payment": AWAITING if awaiting else None,
        "hold_until": _iso_or_none(order.hold_until) if awaiting else None,
        "payment_intent_id": order.payment_intent_id,
        "payment_processing": order.payment_processing,
        "paid_at": _iso_or_none(order.paid_at),
        "refunded_pence": order.refunded_pence,
        "dispute_status": order.dispute_status,
        "payment_flag": order.payment_flag,
        "released_at": _iso_or_none(order.released_at),
        "relay_pending": AWAITING if order.awaits_release else None,
        "relay_since": _iso_or_none(order.confirmed_at) if order.awaits_release or order.released_at else None,
        "fulfilment_open": AWAITING if order.open_for_manufacturer else None,
        "accepted_at": _iso_or_none(order.accepted_at),
        "kit_code": dispatch.kit_code if dispatch else None,
        "carrier": dispatch.carrier if dispatch else None,
        "tracking_reference": dispatch.tracking_reference if dispatch else None,
        "dispatched_at": _iso_or_none(dispatch.dispatched_at) if dispatch else None,
        "rejection_reason": order.rejection_reason,
        "cancelled_at": _iso_or_none(order.cancelled_at),
        "cancellation_pending": AWAITING if order.cancellation_to_tell else None,
        "cancellation_acknowledged": order.cancellation_acknowledged,
    }


def _change_actions(model: type[Model], before: Order, after: Order, retention: timedelta) -> list:
    old, new = _mutable_fields(before, retention), _mutable_fields(after, retention)
    actions = [_set_or_remove(getattr(model, name), value) for name, value in new.items() if value != old[name]]
    added_history = after.history[len(before.history) :]
    if added_history:
        actions.append(model.history.set(model.history.append([_history_record(e) for e in added_history])))
    new_events = after.processed_events - before.processed_events
    if new_events:
        actions.append(model.processed_events.add(set(new_events)))
    actions.append(model.version.set(before.version + 1))
    return actions


def _set_or_remove(attribute, value):
    return attribute.remove() if value is None else attribute.set(value)


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else to_iso(moment)


def _history_record(entry: HistoryEntry) -> dict:
    return {
        "at": to_iso(entry.at),
        "actor": entry.actor,
        "change": entry.change,
        "stripe_event_id": entry.stripe_event_id,
    }


def order_record(model: type[Model], order: Order, retention: timedelta = DEFAULT_RETENTION) -> Model:
    """The item for a new order (also used to load benchmark data)."""
    stored = {name: value for name, value in _mutable_fields(order, retention).items() if value is not None}
    return model(
        order.reference,
        certificate_key=order.certificate_key,
        created_at=to_iso(order.created_at),
        created_on=order.created_at.date().isoformat(),
        amount_pence=order.amount.pence,
        currency=order.amount.currency,
        eligibility_reason=order.eligibility_reason,
        version=order.version,
        history=[_history_record(e) for e in order.history],
        processed_events=set(order.processed_events) or None,
        **stored,
    )


def _order(record: Model) -> Order:
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
            contact_consent=bool(record.contact_consent),
        ),
        state=OrderState(record.order_state),
        payment=PaymentState(record.payment_state),
        fulfilment=FulfilmentState(record.fulfilment_state),
        checkout_session_id=record.checkout_session_id,
        checkout_url=record.checkout_url,
        checkout_expires_at=_time(record.checkout_expires_at),
        checkout_attempt=int(record.checkout_attempt or 0),
        hold_until=_time(record.hold_until),
        payment_intent_id=record.payment_intent_id,
        payment_processing=bool(record.payment_processing),
        paid_at=_time(record.paid_at),
        refunded_pence=int(record.refunded_pence or 0),
        dispute_status=record.dispute_status,
        payment_flag=record.payment_flag,
        released_at=_time(record.released_at),
        accepted_at=_time(record.accepted_at),
        dispatch=_dispatch(record),
        rejection_reason=record.rejection_reason,
        cancelled_at=_time(record.cancelled_at),
        cancellation_acknowledged=bool(record.cancellation_acknowledged),
        erased_at=_time(record.erased_at),
        version=int(record.version or 0),
        processed_events=frozenset(record.processed_events or ()),
        history=tuple(_history_entry(h) for h in record.history or ()),
    )


def _dispatch(record: Model) -> Dispatch | None:
    if not record.kit_code:
        return None
    return Dispatch(record.kit_code, record.carrier, record.tracking_reference, from_iso(record.dispatched_at))


def _time(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


def _history_entry(record) -> HistoryEntry:
    return HistoryEntry(from_iso(record.at), record.actor, record.change, record.stripe_event_id)


class FulfilmentQueries:
    """The manufacturer's lists and the relay's work list, each a query on a sparse index."""

    def __init__(self, models, product_code: str):
        self._orders = models.orders
        self._product_code = product_code

    def relay_pending(self, limit: int = 100) -> list[str]:
        index = self._orders.relay_pending_index
        return [r.order_ref for r in index.query(AWAITING, limit=limit)]

    def open_fulfilments(self, cursor: str | None, limit: int) -> Page:
        results = self._orders.open_fulfilments_index.query(
            AWAITING, limit=limit, last_evaluated_key=decode_cursor(cursor, ("fulfilment_open", "released_at"))
        )
        items = [self._open(record) for record in results]
        return Page(items, encode_cursor(results.last_evaluated_key))

    def cancellations(self, cursor: str | None, limit: int) -> Page:
        results = self._orders.cancellations_index.query(
            AWAITING, limit=limit, last_evaluated_key=decode_cursor(cursor, ("cancellation_pending", "cancelled_at"))
        )
        items = [Cancellation(fulfilment_id_of(r.order_ref), r.order_ref, from_iso(r.cancelled_at)) for r in results]
        return Page(items, encode_cursor(results.last_evaluated_key))

    def _open(self, record) -> OpenFulfilment:
        lines = tuple(line for line in (record.address_line_1, record.address_line_2) if line)
        message = FulfilmentMessage(
            fulfilment_id_of(record.order_ref),
            record.order_ref,
            self._product_code,
            1,
            record.full_name,
            lines,
            record.town,
            record.postcode,
            from_iso(record.relay_since),
        )
        return OpenFulfilment(message, FulfilmentState(record.fulfilment_state), from_iso(record.released_at))


def encode_cursor(last_evaluated_key: dict | None) -> str | None:
    if not last_evaluated_key:
        return None
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, index_keys: tuple[str, str]) -> dict | None:
    """A cursor is only ever a key of this index: anything else is refused, not passed on."""
    if not cursor:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise InvalidInput({"cursor": "cursor is not one this API gave out"}) from None
    expected = {"order_ref", *index_keys}
    if not isinstance(plain, dict) or set(plain) != expected or not all(isinstance(v, str) for v in plain.values()):
        raise InvalidInput({"cursor": "cursor is not one this API gave out"})
    return {name: {"S": value} for name, value in plain.items()}
