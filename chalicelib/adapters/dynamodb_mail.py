"""The order's mail outbox in DynamoDB: a sparse index of the emails due, claimed for a lease by
whoever sends them (services.notifications says how the outbox is used)."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import size

from ..domain.times import to_iso
from .dynamodb import Models, OrderFields
from .dynamodb_order_items import YES, order_from
from .dynamodb_writes import is_condition_failure


def outbox_actions(orders: type[OrderFields], kinds: frozenset[str], due: datetime) -> list:
    """The order's mail outbox (the sparse mail-retry index): these kinds, due at `due`."""
    return [
        orders.mail_retry_kinds.add(set(kinds)),
        orders.mail_retry.set(YES),
        orders.mail_retry_after.set(to_iso(due)),
    ]


class MailOutbox:
    def __init__(self, models: Models):
        self._models = models

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
            if is_condition_failure(exc):
                return None
            raise
        return order_from(record), frozenset(record.mail_retry_kinds or ()), int(record.mail_attempts or 0)

    def defer_notification(self, reference: str, kind: str, retry_after: datetime) -> None:
        """A send that failed, in one UpdateItem: counted, and due again at `retry_after`."""
        orders = self._models.orders
        orders(reference).update(
            actions=[
                orders.mail_retry_kinds.add({kind}),
                orders.mail_attempts.add(1),
                orders.mail_retry.set(YES),
                orders.mail_retry_after.set(to_iso(retry_after)),
            ],
            condition=orders.order_ref.exists(),
        )

    def notifications_due(self, now: datetime) -> list[tuple[str, frozenset[str], int]]:
        """(reference, kinds, failures so far) of orders whose failed emails are due a retry."""
        orders = self._models.orders
        due = orders.mail_retry_index.query(YES, range_key_condition=orders.mail_retry_after <= to_iso(now))
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
            if not is_condition_failure(exc):
                raise
        try:
            record.update(
                actions=[orders.mail_retry_kinds.delete({kind})], condition=orders.mail_retry_kinds.contains(kind)
            )
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
