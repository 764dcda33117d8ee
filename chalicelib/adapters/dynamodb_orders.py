"""Orders and certificate claims in DynamoDB. This adapter decides nothing: the domain's lifecycle
says what changes and which effects follow; this turns them into conditional writes.

A new order and its claim go in one transaction; a change is a write guarded by the order's
version, in a transaction with the claim when an effect moves it; a guarded change (the paid
webhook's common case) is one conditional UpdateItem, its condition and changes the domain's.

The personal fields are sealed (kms_fields) before any write and read back sealed: `get` needs no
KMS key, so the sweep and the purge cannot read a name; `delivery_of` opens them for the readers
that must (the release, the emails, the holder's status check).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ..domain.changes import Effect, GuardedChange, emails_owed
from ..domain.delivery import DeliveryDetails, recipient_lookup_text
from ..domain.lifecycle import ERASED
from ..domain.errors import CertificateAlreadyClaimed, ConcurrentChange, OrderAlreadyExists, OrderNotFound
from ..domain.orders import Order
from ..domain.times import from_iso, to_iso
from .dynamodb import ClaimFields, Models, OrderFields
from .dynamodb_mail import MailOutbox, outbox_actions
from .dynamodb_order_items import (
    PERSONAL,
    YES,
    history_record,
    item_values,
    order_from,
    sealed,
    stored_value,
    view_values,
)
from .dynamodb_writes import failed_conditions, is_condition_failure
from .kms_fields import PersonalFields

DEFAULT_RETENTION = timedelta(days=30)
# The fields support's search by recipient is built from (domain.delivery.recipient_lookup_text).
LOOKUP_FIELDS = ("full_name", "postcode")
RecipientKey = Callable[[str], str]  # the lookup text keyed (RegisterKeys.recipient_key)


class DynamoOrders(MailOutbox):
    def __init__(
        self,
        models: Models,
        fields: PersonalFields,
        retention: timedelta = DEFAULT_RETENTION,
        recipient_key: RecipientKey | None = None,
    ):
        super().__init__(models)
        self._fields = fields
        self._retention = retention
        self._recipient_key = recipient_key

    def create_claiming_certificate(self, order: Order, kits_per_certificate: int) -> None:
        """One TransactWriteItems: the order's put and the claim's conditional increment."""
        claims, orders = self._models.claims, self._models.orders
        try:
            with TransactWrite(connection=self._models.connection) as transaction:
                transaction.save(
                    order_record(orders, order, self._fields, self._retention, self._recipient_key),
                    condition=orders.order_ref.does_not_exist(),
                )
                transaction.update(
                    claims(order.certificate_key),
                    actions=[claims.kits.add(1)],
                    condition=claims.kits.does_not_exist() | (claims.kits < kits_per_certificate),
                )
        except TransactWriteError as exc:
            order_exists, claim_full = (failed_conditions(exc) + [False, False])[:2]
            if order_exists:
                raise OrderAlreadyExists(order.reference) from None
            if claim_full:
                raise CertificateAlreadyClaimed() from None
            raise

    def get(self, reference: str) -> Order:
        try:
            return order_from(self._models.orders.get(reference, consistent_read=True))
        except self._models.orders.DoesNotExist:
            raise OrderNotFound(reference) from None

    def delivery_of(self, order: Order) -> DeliveryDetails:
        """The order's delivery details in clear (a KMS Decrypt the first time a container meets
        the data key they were sealed with)."""
        delivery = order.delivery
        opened = {name: self._fields.open(order.reference, name, getattr(delivery, name)) for name in PERSONAL}
        return DeliveryDetails(**opened, contact_consent=delivery.contact_consent)

    def apply_guarded(self, reference: str, change: GuardedChange) -> Order | None:
        """One UpdateItem: the domain's requirements as its condition; as its actions, the fields it
        sets and the views that differ between an order meeting them and the same order changed.
        Returns the order as it now is, or None when it did not meet them (the caller then takes
        the general path)."""
        orders = self._models.orders
        condition, actions = _guarded_write(orders, change, self._retention, reference, self._fields)
        record = orders(reference)
        try:
            record.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return order_from(record)

    def save(
        self,
        before: Order,
        after: Order,
        effects: frozenset[Effect] = frozenset(),
        mail_held_until: datetime | None = None,
    ) -> None:
        """Write `after` on condition nothing changed since `before` was read. The effects the
        store carries out go in the same write: the claim moves, and emails owed join the outbox
        (held until `mail_held_until` for the caller who will send them, else due at once)."""
        orders, claims = self._models.orders, self._models.claims
        actions = _change_actions(orders, before, after, self._retention, self._write(after))
        emails = emails_owed(effects)
        if emails:
            actions += outbox_actions(orders, emails, mail_held_until or after.history[-1].at)
        condition = orders.version == before.version
        try:
            if Effect.RELEASE_CLAIM in effects or Effect.RECLAIM in effects:
                with TransactWrite(connection=self._models.connection) as transaction:
                    transaction.update(orders(after.reference), actions=actions, condition=condition)
                    transaction.update(claims(after.certificate_key), **_claim_change(claims, effects))
            else:
                orders(after.reference).update(actions=actions, condition=condition)
        except (TransactWriteError, UpdateError) as exc:
            if is_condition_failure(exc):
                raise ConcurrentChange(after.reference) from None
            raise

    def _write(self, after: Order) -> Callable[[dict], dict]:
        """How a change's attributes are written for this order: sealed, with the recipient's key."""
        fields, reference = self._fields, after.reference

        def stored(name: str) -> str | None:  # a field the change leaves as it was: sealed, so opened
            value = getattr(after.delivery, name)
            return None if value in (None, "", ERASED) else fields.open(reference, name, value)

        return lambda changed: written(changed, reference, fields, self._recipient_key, stored)

    def find_by_recipient(self, surname: str, postcode: str) -> list[str]:
        """References of the orders whose recipient has this surname and delivery postcode (the
        sparse recipient index, keys alone; none once the name and address are erased)."""
        text = recipient_lookup_text(surname, postcode)
        if text is None:
            return []
        index = self._models.orders.recipient_index
        return sorted(r.order_ref for r in index.query(_keyed(self._recipient_key, text)))

    def erasure_due(self, now: datetime) -> list[str]:
        """Orders whose recipient's personal data is due to go (sparse index, never a scan)."""
        index, erase_after = self._models.orders.erasure_due_index, self._models.orders.erase_after
        return [r.order_ref for r in index.query(YES, range_key_condition=erase_after < to_iso(now))]

    def needing_support(self) -> list[tuple[str, datetime]]:
        """Support's work list, oldest first, from the sparse index's keys alone (nothing opened)."""
        results = self._models.orders.support_needed_index.query(YES)
        return [(r.order_ref, from_iso(r.support_since)) for r in results]

    def awaiting_past_hold(self, now: datetime) -> list[str]:
        """References of unpaid orders still holding a claim after their hold ran out (sparse index)."""
        index = self._models.orders.awaiting_payment_index
        hold_until = self._models.orders.hold_until
        return [r.order_ref for r in index.query(YES, range_key_condition=hold_until < to_iso(now))]


def _guarded_write(
    orders: type[OrderFields], change: GuardedChange, retention: timedelta, reference: str, fields: PersonalFields
) -> tuple:
    """The condition (the domain's requirements, the event unseen) and the actions (the fields set,
    and the views that differ between the change's sketches, before and after)."""
    condition = ~orders.processed_events.contains(change.entry.stripe_event_id)
    for field, value in change.requires.items():
        for name, stored in stored_value(field, value).items():
            attribute = getattr(orders, name)
            condition &= attribute.does_not_exist() if stored is None else attribute == stored
    before, after = change.sketch()
    old_views, new_views = view_values(before, retention), view_values(after, retention)
    changes = {
        name: value for field, set_to in change.sets.items() for name, value in stored_value(field, set_to).items()
    }
    changes.update({name: value for name, value in new_views.items() if value != old_views[name]})
    changes = sealed(changes, reference, fields.seal)
    actions = [
        *(_set_or_remove(getattr(orders, name), value) for name, value in changes.items()),
        orders.processed_events.add({change.entry.stripe_event_id}),
        orders.history.set(orders.history.append([history_record(change.entry)])),
        orders.version.add(1),
    ]
    return condition, actions


def guarded_attributes(change: GuardedChange, retention: timedelta) -> dict:
    """The attributes a guarded change writes (None: removed): the fields it sets, and the views
    that differ between its sketches, an order meeting its requirements before and after."""
    before, after = change.sketch()
    old_views, new_views = view_values(before, retention), view_values(after, retention)
    written = {
        name: value for field, set_to in change.sets.items() for name, value in stored_value(field, set_to).items()
    }
    return written | {name: value for name, value in new_views.items() if value != old_views[name]}


def _claim_change(claims: type[ClaimFields], effects: frozenset[Effect]) -> dict:
    if Effect.RECLAIM in effects:  # paid money is honoured even past the limit
        return {"actions": [claims.kits.add(1)]}
    return {"actions": [claims.kits.add(-1)], "condition": claims.kits > 0}


def _change_actions(
    model: type[OrderFields], before: Order, after: Order, retention: timedelta, write: Callable[[dict], dict]
) -> list:
    """SET or REMOVE for each attribute whose value differs (a personal field sealed afresh only
    when it changed: erasure removes it, sealing nothing); the new log lines and events."""
    old, new = item_values(before, retention), item_values(after, retention)
    changed = write({name: value for name, value in new.items() if value != old[name]})
    actions = [_set_or_remove(getattr(model, name), value) for name, value in changed.items()]
    added_history = after.history[len(before.history) :]
    if added_history:
        actions.append(model.history.set(model.history.append([history_record(e) for e in added_history])))
    new_events = after.processed_events - before.processed_events
    if new_events:
        actions.append(model.processed_events.add(set(new_events)))
    actions.append(model.version.set(before.version + 1))
    return actions


def _set_or_remove(attribute, value):
    return attribute.remove() if value is None else attribute.set(value)


def written(
    changed: dict, reference: str, fields: PersonalFields, key: RecipientKey | None, stored: Callable[[str], str | None]
) -> dict:
    """The attributes a write sets (None: removes): `changed` with its personal fields sealed and,
    when it writes the name or the postcode, the recipient's lookup key beside them (removed with
    them: an erased order is never found). `stored` opens a lookup field the write leaves as it was."""
    if any(name in changed for name in LOOKUP_FIELDS):
        clear = {}
        for name in LOOKUP_FIELDS:
            value = changed[name] if name in changed else stored(name)
            clear[name] = "" if value in (None, ERASED) else value
        text = recipient_lookup_text(clear["full_name"], clear["postcode"])
        changed = {**changed, "recipient_key": None if text is None else _keyed(key, text)}
    return sealed(changed, reference, fields.seal)


def _keyed(key: RecipientKey | None, text: str) -> str:
    if key is None:
        raise RuntimeError("this order store was built without the recipient key; it cannot write a name")
    return key(text)


def order_record(
    model: type[OrderFields],
    order: Order,
    fields: PersonalFields,
    retention: timedelta = DEFAULT_RETENTION,
    recipient_key: RecipientKey | None = None,
) -> OrderFields:
    """The item for a new order, its personal fields sealed and its recipient keyed (also used to
    load benchmark data)."""
    values = written(item_values(order, retention), order.reference, fields, recipient_key, lambda _name: None)
    stored = {name: value for name, value in values.items() if value is not None}
    return model(
        version=order.version,
        history=[history_record(e) for e in order.history],
        processed_events=set(order.processed_events) or None,
        **stored,
    )
