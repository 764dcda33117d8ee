"""The audit log in DynamoDB: one item per entry, keyed by its UTC day and `time#id` (so a period
is read day by day, newest first), with a sparse index on the order reference for one order's
entries. Items are only put, on the condition that the key is new: nothing here updates or
deletes one, and the console's role has no permission to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from ..domain.audit import AuditEntry
from ..domain.errors import AuditEntryExists
from ..domain.times import from_iso
from .dynamodb import model_meta
from .dynamodb_writes import is_condition_failure


def _stamp(moment: datetime) -> str:
    """UTC ISO 8601 to the microsecond, so entries sort in the order they were made."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OrderIndex(GlobalSecondaryIndex):
    """Sparse: only entries about an order carry its reference."""

    class Meta:
        index_name = "by-order"
        projection = AllProjection()

    order_reference = UnicodeAttribute(hash_key=True)
    at_id = UnicodeAttribute(range_key=True)


class AuditFields(Model):
    day = UnicodeAttribute(hash_key=True)  # YYYY-MM-DD (UTC)
    at_id = UnicodeAttribute(range_key=True)  # 2026-12-02T09:00:00.000000Z#<entry id>
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    order_reference = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)  # JSON object of strings
    by_order = OrderIndex()


def build_audit_model(table_name: str, region: str, host: str | None) -> type[AuditFields]:
    class AuditRecord(AuditFields):
        Meta = model_meta(table_name, region, host)

    return AuditRecord


class DynamoAuditLog:
    def __init__(self, model: type[AuditFields]):
        self._model = model

    def append(self, entry: AuditEntry) -> None:
        at = _stamp(entry.at)
        record = self._model(
            at[:10],
            f"{at}#{entry.entry_id}",
            at=at,
            actor=entry.actor,
            action=entry.action,
            order_reference=entry.order_reference,
            reason=entry.reason,
            detail=json.dumps(dict(entry.detail), sort_keys=True) if entry.detail else None,
        )
        try:
            record.save(condition=self._model.at_id.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                raise AuditEntryExists(entry.entry_id) from None
            raise

    def between(
        self,
        start: datetime,
        end: datetime,
        *,
        actor: str | None = None,
        action: str | None = None,
        order_reference: str | None = None,
    ) -> Iterator[AuditEntry]:
        model = self._model
        low, high = _stamp(start), _stamp(end)
        within = model.at_id.between(low, high)  # `high#…` sorts after `high`: dropped below
        condition = None
        for attribute, wanted in ((model.actor, actor), (model.action, action)):
            if wanted is not None:
                condition = (attribute == wanted) if condition is None else condition & (attribute == wanted)
        if order_reference is not None:
            found = model.by_order.query(order_reference, within, filter_condition=condition, scan_index_forward=False)
            yield from (_entry(r) for r in found if r.at < high)
            return
        day = (end - timedelta(microseconds=1)).date()
        while day >= start.date():
            found = model.query(day.isoformat(), within, filter_condition=condition, scan_index_forward=False)
            yield from (_entry(r) for r in found if r.at < high)
            day -= timedelta(days=1)


def _entry(record: AuditFields) -> AuditEntry:
    at_iso, _, entry_id = record.at_id.partition("#")
    return AuditEntry(
        at=from_iso(record.at),
        actor=record.actor,
        action=record.action,
        entry_id=entry_id,
        order_reference=record.order_reference,
        reason=record.reason,
        detail=tuple(sorted(json.loads(record.detail).items())) if record.detail else (),
    )
