"""The reconciliation file's rows: one per balance transaction (joined to its order, if any) and
one per order no transaction of the period stood for. Pure, like the reconciliation itself."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .references import fulfilment_id_of

if TYPE_CHECKING:  # the reconciliation imports this module; its types are only annotations here
    from .reconciliation import Finding, LedgerEntry, OrderFacts

ROW_COLUMNS = (
    "row_type",
    "order_reference",
    "order_date",
    "order_state",
    "payment_state",
    "fulfilment_state",
    "currency",
    "amount_pence",
    "amount_pounds",
    "fee_pence",
    "fee_pounds",
    "net_pence",
    "net_pounds",
    "refunded_pence",
    "disputed_pence",
    "payment_intent_id",
    "charge_id",
    "balance_transaction_id",
    "reporting_category",
    "transaction_date",
    "payout_id",
    "payout_date",
    "discrepancies",
    "cancellation",
    "fulfilments",
)


def pounds(pence: int) -> Decimal:
    return (Decimal(pence) / 100).quantize(Decimal("0.01"))


def row(kind: str, order: OrderFacts | None, entry: LedgerEntry | None, found: list[Finding]) -> dict[str, object]:
    """The file's columns (ROW_COLUMNS) for a balance transaction, an order, or both joined."""
    return {
        "row_type": kind,
        **_order_cells(order, entry),
        **_money_cells(order, entry),
        **_entry_cells(order, entry),
        "discrepancies": "; ".join(f.kind.name.lower() for f in found),
        "cancellation": cancellation(order),
        "fulfilments": fulfilments(order),
    }


def cancellation(order: OrderFacts | None) -> str:
    """What a cancelled order is, so it reads as itself and not as money gone missing: who
    cancelled, whether the kit maker had been sent it, and what was given back."""
    if order is None or order.state.value != "cancelled":
        return ""
    who = "by the holder" if order.cancelled_by_holder else "by tracekit"
    when = "after release to the kit maker" if order.released_at is not None else "before release"
    if order.amount_pence == 0:
        money = "free"
    elif order.refunded_pence >= order.amount_pence:
        money = "refunded in full"
    else:
        money = f"refunded {order.refunded_pence} of {order.amount_pence}"
    return f"cancelled {who}, {when}, {money}"


def fulfilments(order: OrderFacts | None) -> str:
    """An order sent more than once, kit by kit, so a second kit with no second payment reads as
    what it is ('F-…: dispatched, replacement approved; F-…-2: dispatched, at no charge'); empty
    for the common order of one fulfilment."""
    if order is None or not order.earlier_fulfilments:
        return ""
    earlier = [f"{e.fulfilment_id}: {e.state.value}, {e.reason or 'superseded'}" for e in order.earlier_fulfilments]
    current = f"{fulfilment_id_of(order.reference, order.fulfilment_attempt)}: {order.fulfilment.value}, at no charge"
    return "; ".join([*earlier, current])


def _order_cells(order: OrderFacts | None, entry: LedgerEntry | None) -> dict[str, object]:
    return {
        "order_reference": order.reference if order else (entry.order_reference if entry else ""),
        "order_date": order.created_at.date().isoformat() if order else "",
        "order_state": order.state.value if order else "",
        "payment_state": order.payment.value if order else "",
        "fulfilment_state": order.fulfilment.value if order else "",
    }


def _money_cells(order: OrderFacts | None, entry: LedgerEntry | None) -> dict[str, object]:
    amount = entry.amount if entry else (order.amount_pence if order else 0)
    fee = entry.fee if entry else 0
    net = entry.net if entry else 0
    return {
        "currency": entry.currency if entry else (order.currency if order else ""),
        "amount_pence": amount,
        "amount_pounds": pounds(amount),
        "fee_pence": fee,
        "fee_pounds": pounds(fee),
        "net_pence": net,
        "net_pounds": pounds(net),
        "refunded_pence": order.refunded_pence if order else "",
        "disputed_pence": -entry.amount if entry and entry.reporting_category == "dispute" else "",
    }


def _entry_cells(order: OrderFacts | None, entry: LedgerEntry | None) -> dict[str, object]:
    return {
        "payment_intent_id": (entry.payment_intent_id if entry else None)
        or (order.payment_intent_id if order else "")
        or "",
        "charge_id": entry.charge_id if entry and entry.charge_id else "",
        "balance_transaction_id": entry.id if entry else "",
        "reporting_category": entry.reporting_category if entry else "",
        "transaction_date": entry.created.date().isoformat() if entry else "",
        "payout_id": entry.payout_id or "" if entry else "",
        "payout_date": entry.payout_date.isoformat() if entry and entry.payout_date else "",
    }
