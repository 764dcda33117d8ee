"""Finance's reconciliation: every order against Stripe's balance transactions, to the penny.

Pure: the service feeds it orders and ledger entries as they stream in, it yields rows and keeps
only the running totals, the ids it must remember to find what is missing, and the
discrepancies. Nothing personal ever enters it: `OrderFacts` has no name, address, email or
certificate data, so no export can carry them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Iterator

from .orders import MONEY_TAKEN, EarlierFulfilment, FulfilmentState, OrderState, PaymentState
from .reconciliation_rows import ROW_COLUMNS, row as _row


@dataclass(frozen=True)
class Period:
    """UTC, inclusive start, exclusive end: as Stripe's reporting API counts."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("the period's end must be after its start")

    def days(self) -> Iterator["Period"]:
        day = self.start
        while day < self.end:
            yield Period(day, day + timedelta(days=1))
            day += timedelta(days=1)


@dataclass(frozen=True)
class OrderFacts:
    reference: str
    created_at: datetime
    state: OrderState
    payment: PaymentState
    fulfilment: FulfilmentState
    amount_pence: int
    currency: str
    payment_intent_id: str | None
    refunded_pence: int
    dispute_status: str | None
    released_at: datetime | None = None  # set: the kit maker had it, so a cancellation went to them
    cancelled_by_holder: bool = False
    # Its fulfilments after the first (a replacement, or one sent again to a corrected address):
    # the current one's number and those it superseded, so a second kit reads as what it is.
    fulfilment_attempt: int = 1
    earlier_fulfilments: tuple[EarlierFulfilment, ...] = ()


@dataclass(frozen=True)
class LedgerEntry:
    """A Stripe balance transaction, with what it is about."""

    id: str
    type: str
    reporting_category: str
    amount: int
    fee: int
    net: int
    currency: str
    created: datetime
    source_id: str | None
    charge_id: str | None
    payment_intent_id: str | None
    order_reference: str | None
    charge_amount_refunded: int | None = None
    payout_id: str | None = None
    payout_date: date | None = None


@dataclass(frozen=True)
class Payout:
    id: str
    amount: int
    currency: str
    arrival_date: date


class Discrepancy(str, Enum):
    PAID_WITHOUT_ORDER = "Money in Stripe with no confirmed order"
    ORDER_WITHOUT_CHARGE = "Confirmed paid order with no Stripe charge"
    AMOUNT_MISMATCH = "Amount or currency differs from the order"
    REFUND_MISMATCH = "Refunded in Stripe and in tracekit differ"
    DISPUTE = "Disputes"
    FREE_WITH_MONEY = "Free orders with money attached"
    NOT_RELEASED = "Paid orders not yet released to the manufacturer"


@dataclass(frozen=True)
class Finding:
    kind: Discrepancy
    order_reference: str | None
    balance_transaction_id: str | None
    detail: str


__all__ = ["ROW_COLUMNS", "Discrepancy", "Finding", "LedgerEntry", "OrderFacts", "Payout", "Period", "Reconciliation"]


_CHARGES = {"charge", "payment"}
_DISPUTES = {"dispute", "dispute_reversal"}


@dataclass
class Reconciliation:
    """The running reconciliation of one period."""

    period: Period
    findings: list[Finding] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    payouts: dict[str, Payout] = field(default_factory=dict)
    _charged_orders: set[str] = field(default_factory=set)

    def start_day(self) -> None:
        """Charges are matched to orders day by day: only one day's ids are ever held."""
        self._charged_orders.clear()

    def entry_row(self, entry: LedgerEntry, order: OrderFacts | None) -> dict[str, object]:
        """One balance transaction, joined to its order (if it has one)."""
        found = self._check_entry(entry, order)
        self._count_entry(entry)
        if entry.type in _CHARGES and entry.order_reference:
            self._charged_orders.add(entry.order_reference)
        return _row("balance_transaction", order, entry, found)

    def order_facts(self, order: OrderFacts) -> tuple[dict[str, object] | None, list[Finding]]:
        """Every order of the period passes here once. Returns its own row when no balance
        transaction of the period stood for it, and what is wrong with it."""
        self.states.update(
            {
                f"order {order.state.value}": 1,
                f"payment {order.payment.value}": 1,
                f"fulfilment {order.fulfilment.value}": 1,
            }
        )
        if order.amount_pence == 0 and order.state is OrderState.CONFIRMED:
            self.totals["free_kits"] += 1
        found = self._check_order(order)
        row = None if order.reference in self._charged_orders else _row("order", order, None, found)
        return row, found

    def unmatched_paid_orders(self, order: OrderFacts) -> bool:
        """Paid per tracekit, but no charge seen in the period: the caller asks Stripe directly."""
        return order.payment in MONEY_TAKEN and order.amount_pence > 0 and order.reference not in self._charged_orders

    def note_missing_charge(self, order: OrderFacts) -> Finding:
        return self._find(
            Discrepancy.ORDER_WITHOUT_CHARGE,
            order.reference,
            None,
            f"payment {order.payment.value}, payment intent {order.payment_intent_id or 'none'}",
        )

    def _check_entry(self, entry: LedgerEntry, order: OrderFacts | None) -> list[Finding]:
        if entry.type == "payout":
            return []
        found = []
        unpaid_order = order is not None and order.amount_pence > 0 and order.payment not in MONEY_TAKEN
        if order is None or (entry.type in _CHARGES and unpaid_order):
            state = "no order" if order is None else f"order {order.state.value}, payment {order.payment.value}"
            found.append(
                self._find(
                    Discrepancy.PAID_WITHOUT_ORDER,
                    entry.order_reference,
                    entry.id,
                    f"{entry.type} of {entry.amount} {entry.currency}; {state}",
                )
            )
        if order is not None and entry.type in _CHARGES:
            found += self._check_charge(entry, order)
        if entry.reporting_category in _DISPUTES:
            found.append(
                self._find(
                    Discrepancy.DISPUTE,
                    entry.order_reference,
                    entry.id,
                    f"{entry.reporting_category} {entry.amount} {entry.currency}, fee {entry.fee}",
                )
            )
        return found

    def _check_charge(self, entry: LedgerEntry, order: OrderFacts) -> list[Finding]:
        found = []
        if order.amount_pence == 0:
            found.append(
                self._find(
                    Discrepancy.FREE_WITH_MONEY,
                    order.reference,
                    entry.id,
                    f"charge of {entry.amount} {entry.currency} on a free order",
                )
            )
        elif (entry.amount, entry.currency) != (order.amount_pence, order.currency):
            found.append(
                self._find(
                    Discrepancy.AMOUNT_MISMATCH,
                    order.reference,
                    entry.id,
                    f"Stripe {entry.amount} {entry.currency}, order {order.amount_pence} {order.currency}",
                )
            )
        if entry.charge_amount_refunded is not None and entry.charge_amount_refunded != order.refunded_pence:
            found.append(
                self._find(
                    Discrepancy.REFUND_MISMATCH,
                    order.reference,
                    entry.id,
                    f"Stripe refunded {entry.charge_amount_refunded}, tracekit {order.refunded_pence}",
                )
            )
        return found

    def _check_order(self, order: OrderFacts) -> list[Finding]:
        found = []
        if order.amount_pence == 0 and order.payment_intent_id:
            found.append(
                self._find(
                    Discrepancy.FREE_WITH_MONEY,
                    order.reference,
                    None,
                    f"free order with payment intent {order.payment_intent_id}",
                )
            )
        if order.dispute_status and order.payment is PaymentState.DISPUTED:
            found.append(self._find(Discrepancy.DISPUTE, order.reference, None, f"dispute {order.dispute_status}"))
        paid = order.payment in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.DISPUTED)
        if paid and order.state is OrderState.CONFIRMED and order.fulfilment is FulfilmentState.NOT_RELEASED:
            found.append(
                self._find(
                    Discrepancy.NOT_RELEASED, order.reference, None, f"paid, fulfilment {order.fulfilment.value}"
                )
            )
        return found

    def _count_entry(self, entry: LedgerEntry) -> None:
        category = entry.reporting_category
        self.totals["fees"] += entry.fee
        self.totals["net"] += entry.net if entry.type != "payout" else 0
        if entry.type in _CHARGES:
            self.totals["gross"] += entry.amount
            self.totals["charges"] += 1
        elif category == "refund":
            self.totals["refunds"] += -entry.amount
        elif category in _DISPUTES:
            self.totals["disputes"] += -entry.amount
        elif entry.type == "payout":
            self.totals["paid_out"] += -entry.amount

    def _find(self, kind: Discrepancy, reference: str | None, transaction: str | None, detail: str) -> Finding:
        finding = Finding(kind, reference, transaction, detail)
        self.findings.append(finding)
        return finding

    def summary(self) -> list[tuple[str, int | str]]:
        """(label, value) lines: counts and totals in pence as numbers, discrepancies by kind, payouts."""
        lines: list[tuple[str, int | str]] = [
            ("period start (inclusive, UTC)", self.period.start.isoformat()),
            ("period end (exclusive, UTC)", self.period.end.isoformat()),
        ]
        lines += sorted(self.states.items())
        for name in ("free_kits", "charges", "gross", "fees", "net", "refunds", "disputes", "paid_out"):
            lines.append((name + ("" if name in ("free_kits", "charges") else "_pence"), self.totals[name]))
        by_kind = Counter(f.kind for f in self.findings)
        lines += [(f"discrepancies: {kind.value}", by_kind[kind]) for kind in Discrepancy]
        lines += [
            (f"payout {p.id}", f"{p.amount} {p.currency} arriving {p.arrival_date.isoformat()}")
            for p in sorted(self.payouts.values(), key=lambda p: (p.arrival_date, p.id))
        ]
        return lines
