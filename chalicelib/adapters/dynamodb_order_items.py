"""How an Order is stored, declared once: its item's attributes follow from the Order's own fields.

Every field of `Order` (and of the value objects in it: Money, DeliveryDetails, Dispatch) is an
attribute of the item, under its own name unless RENAMED says otherwise, typed from the field's
annotation. From that one list come the table model's attributes, the item of a new order, the
changes a save writes and the Order read back: adding a field touches the Order alone.

Beside them are the views: attributes derived from the order's state by the domain's own
properties (which work list it is on, when its personal data must go), written in the same write
as the state they follow, so no write can leave one stale.

The personal fields (PERSONAL) are sealed one by one before they are written (kms_fields) and read
back sealed: an Order from the store carries them as opaque text until a reader that must see them
opens them (DynamoOrders.delivery_of); docs/data-protection.md lists them.
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Callable, Union, get_args, get_origin, get_type_hints

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from ..domain.lifecycle import ERASED
from ..domain.orders import Dispatch, EarlierFulfilment, FulfilmentState, HistoryEntry, Order
from ..domain.times import from_iso, to_iso

# Item names that differ from the Order's (the table's key, and names the indexes were built on).
RENAMED = {
    ("reference",): "order_ref",
    ("state",): "order_state",
    ("payment",): "payment_state",
    ("fulfilment",): "fulfilment_state",
    ("amount", "pence"): "amount_pence",
    ("amount", "currency"): "currency",
}
# Kept by hand: the version guards every write, and the log and the events seen only ever grow.
APPENDED = ("version", "processed_events", "history")
# The attributes that name or locate a person: sealed before they are written, never in clear.
PERSONAL = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email")
YES = "yes"  # the hash key of every sparse index: present only while the order is on the list


@dataclass(frozen=True)
class Column:
    """One attribute of the item: where it sits in the Order, and how its value is stored."""

    name: str
    path: tuple[str, ...]
    kind: type[Any]  # the stored value's Python type, called to read it back

    def attribute(self):
        if self.path in ENCODED:
            return UnicodeAttribute(null=True)
        if self.path == ("reference",):
            return UnicodeAttribute(hash_key=True)
        factory = {int: NumberAttribute, bool: BooleanAttribute}.get(self.kind, UnicodeAttribute)
        return factory(null=True)

    def stored(self, value: Any) -> Any:
        """The item's value for the Order's; None (the attribute absent) for None and for ''."""
        if self.path in ENCODED:
            return ENCODED[self.path][0](value)
        if value is None or value == "":
            return None
        if isinstance(value, Enum):
            return value.value
        return to_iso(value) if isinstance(value, datetime) else value

    def read(self, value: Any) -> Any:
        if value is None:
            return None
        if self.path in ENCODED:
            return ENCODED[self.path][1](value)
        if issubclass(self.kind, Enum):
            return self.kind(value)
        if self.kind is datetime:
            return from_iso(value)
        return self.kind(value)


def _earlier_document(earlier: tuple[EarlierFulfilment, ...]) -> str | None:
    """The superseded fulfilments as one JSON text (absent while there are none): ids, states,
    times and the kit maker's dispatch reports, nothing personal."""
    if not earlier:
        return None
    rows: list[dict[str, Any]] = []
    for e in earlier:
        sent = e.dispatch
        dispatch = None if sent is None else {**dataclasses.asdict(sent), "dispatched_at": to_iso(sent.dispatched_at)}
        released = to_iso(e.released_at) if e.released_at else None
        row: dict[str, Any] = {"fulfilment_id": e.fulfilment_id, "state": e.state.value, "released_at": released}
        rows.append({**row, "dispatch": dispatch, "ended_at": to_iso(e.ended_at), "reason": e.reason})
    return json.dumps(rows, sort_keys=True)


def _earlier_from(document: str) -> tuple[EarlierFulfilment, ...]:
    def dispatch(raw: dict | None) -> Dispatch | None:
        return None if raw is None else Dispatch(**{**raw, "dispatched_at": from_iso(raw["dispatched_at"])})

    return tuple(
        EarlierFulfilment(
            fulfilment_id=row["fulfilment_id"],
            state=FulfilmentState(row["state"]),
            released_at=from_iso(row["released_at"]) if row["released_at"] else None,
            dispatch=dispatch(row["dispatch"]),
            ended_at=from_iso(row["ended_at"]),
            reason=row["reason"],
        )
        for row in json.loads(document)
    )


# Fields stored as one encoded attribute rather than one attribute per value: (encode, decode).
ENCODED: dict[tuple[str, ...], tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    ("earlier_fulfilments",): (_earlier_document, _earlier_from),
}


def _plain(hint) -> tuple[type, bool]:
    """(the type, whether None is allowed) of an annotation like `str`, `Dispatch | None`."""
    if get_origin(hint) in (Union, types.UnionType):
        [inner] = [arg for arg in get_args(hint) if arg is not type(None)]
        return inner, True
    return hint, False


def _columns(cls: type, path: tuple[str, ...] = ()) -> list[Column]:
    columns = []
    for name, hint in get_type_hints(cls).items():
        if not path and name in APPENDED:
            continue
        kind, _ = _plain(hint)
        here = (*path, name)
        if here in ENCODED:
            columns.append(Column(here[-1], here, str))
        elif dataclasses.is_dataclass(kind):
            columns += _columns(kind, here)
        else:
            columns.append(Column(RENAMED.get(here, here[-1]), here, kind))
    return columns


COLUMNS = _columns(Order)


def _value_at(order: Order, path: tuple[str, ...]) -> Any:
    value: Any = order
    for step in path:
        if value is None:
            return None
        value = getattr(value, step)
    return value


def field_values(order: Order) -> dict[str, Any]:
    """The item's attributes for the order's fields (None: absent)."""
    return {c.name: c.stored(_value_at(order, c.path)) for c in COLUMNS}


def stored_value(field: str, value: Any) -> dict[str, Any]:
    """The attributes for one Order field holding `value` (a value object spans several)."""
    parts = [c for c in COLUMNS if c.path[0] == field]
    if len(parts) == 1 and len(parts[0].path) == 1:
        return {parts[0].name: parts[0].stored(value)}
    return {c.name: c.stored(_value_at(value, c.path[1:])) for c in parts}


# The work lists the order is on (each a sparse index), by the domain's own properties.
_LISTS: dict[str, Callable[[Order, timedelta], bool]] = {
    "awaiting_payment": lambda o, _: o.awaits_payment and o.hold_until is not None,  # the hold sweep's
    # the relay's (the outbox of the queue): a message not yet sent, or an address amendment
    "relay_pending": lambda o, _: o.awaits_release or o.amendment_unsent,
    "fulfilment_open": lambda o, _: o.open_for_manufacturer,  # the kit maker's open orders
    "cancellation_pending": lambda o, _: o.cancellation_to_tell,  # the kit maker's cancellations
    "amendment_pending": lambda o, _: o.amendment_to_tell,  # the kit maker's address amendments
    "erasure_due": lambda o, retention: o.personal_data_until(retention) is not None,
    "support_needed": lambda o, _: o.needs_support,  # support's work list (Order.needs_support)
}
# The lists' sort keys that are not fields of the order.
_TIMES: dict[str, Callable[[Order, timedelta], datetime | None]] = {
    # when it was confirmed: the relay's order, and the message's created_at on the open list
    "relay_since": lambda o, _: o.confirmed_at if o.awaits_release or o.released_at else None,
    "erase_after": lambda o, retention: o.personal_data_until(retention),
    "support_since": lambda o, _: o.support_since,
}
VIEWS = (*_LISTS, *_TIMES, "created_on")


def view_values(order: Order, retention: timedelta) -> dict[str, Any]:
    times = {name: time(order, retention) for name, time in _TIMES.items()}
    return {
        **{name: YES if on(order, retention) else None for name, on in _LISTS.items()},
        **{name: to_iso(moment) if moment else None for name, moment in times.items()},
        "created_on": order.created_at.date().isoformat(),  # the finance index's day
    }


def item_values(order: Order, retention: timedelta) -> dict[str, Any]:
    """Every attribute a save manages for the order: its fields and its views (None: absent)."""
    return {**field_values(order), **view_values(order, retention)}


def sealed(values: dict[str, Any], reference: str, seal: Callable[[str, str, str], str]) -> dict[str, Any]:
    """`values` with every personal field sealed for this order; absent ones stay absent, and the
    erasure's mark, which names nobody, stays as it is: the purge overwrites without a key. Only
    values that changed reach here (a sealed one read back is never written again), so whatever
    a holder typed is sealed, even text that looks sealed."""
    return {name: seal(reference, name, value) if _to_seal(name, value) else value for name, value in values.items()}


def _to_seal(name: str, value: Any) -> bool:
    return name in PERSONAL and value is not None and value != ERASED


def history_record(entry) -> dict:
    return {
        "at": to_iso(entry.at),
        "actor": entry.actor,
        "change": entry.change,
        "stripe_event_id": entry.stripe_event_id,
    }


def field_from(record, field: str) -> Any:
    """One scalar field of the Order, read from an item (or an index's projection of it)."""
    [column] = [c for c in COLUMNS if c.path == (field,)]
    return column.read(getattr(record, column.name, None))


def _history_entry(record) -> HistoryEntry:
    return HistoryEntry(from_iso(record.at), record.actor, record.change, record.stripe_event_id)


def order_from(record) -> Order:
    """The Order an item holds."""
    values: dict[tuple[str, ...], Any] = {c.path: c.read(getattr(record, c.name, None)) for c in COLUMNS}
    built = _build(Order, (), values)
    return dataclasses.replace(
        built,
        version=int(record.version or 0),
        processed_events=frozenset(record.processed_events or ()),
        history=tuple(_history_entry(h) for h in record.history or ()),
    )


def _build(cls: type, path: tuple[str, ...], values: dict[tuple[str, ...], Any]):
    hints = get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not path and f.name in APPENDED:
            continue
        kind, optional = _plain(hints[f.name])
        here = (*path, f.name)
        if here in ENCODED:
            kwargs[f.name] = f.default if values[here] is None else values[here]
        elif dataclasses.is_dataclass(kind):
            inner = {p: v for p, v in values.items() if p[: len(here)] == here}
            kwargs[f.name] = None if optional and all(v is None for v in inner.values()) else _build(kind, here, values)
        else:
            kwargs[f.name] = _or_default(values[here], f, kind)
    return cls(**kwargs)


def _or_default(value: Any, f: dataclasses.Field, kind: type) -> Any:
    if value is not None:
        return value
    if f.default is not dataclasses.MISSING:
        return f.default
    return {str: "", int: 0, bool: False}.get(kind)
