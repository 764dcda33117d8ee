"""The balance ledger: every balance transaction in created order, and which payout holds each."""

from __future__ import annotations

import bisect
from typing import Any, Callable, Iterable, Sequence

from devstack.stripe_emulator.errors import invalid_param
from devstack.stripe_emulator.listing import RangeFilter

TransactionFilter = Callable[[dict[str, Any]], bool]


class BalanceLedger:
    """Every balance transaction, oldest first by (created, arrival), and which payout holds each.

    Listings walk this order backwards from a cursor found through an id ->
    position index, so paging through 100,000 transactions never re-sorts or
    re-scans them. Transactions normally arrive in created order and are
    appended; back-dated ones (from seeding) are merged in, and the index is
    rebuilt once, at the next lookup. Not thread-safe: the emulator's lock guards it.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._ids: list[str] = []
        self._created: list[int] = []
        self._positions: dict[str, int] = {}
        self._positions_stale = False
        self._payout_of: dict[str, str] = {}
        self._payout_sizes: dict[str, int] = {}
        # Ids not yet paid out, in arrival order (a dict as an ordered set).
        self._awaiting_payout: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, txn_id: str) -> dict[str, Any] | None:
        """The stored transaction with this id, if any."""
        return self._by_id.get(txn_id)

    def add(self, transactions: Sequence[dict[str, Any]], *, awaiting_payout: bool = True) -> None:
        """Store transactions (a payout's own one is never paid out, so it passes awaiting_payout=False)."""
        batch = sorted(transactions, key=lambda txn: txn["created"])
        if not batch:
            return
        for txn in batch:
            self._by_id[txn["id"]] = txn
            if awaiting_payout:
                self._awaiting_payout[txn["id"]] = None
        in_order = not self._created or batch[0]["created"] >= self._created[-1]
        start = len(self._ids)
        self._ids.extend(txn["id"] for txn in batch)
        self._created.extend(txn["created"] for txn in batch)
        if in_order:
            if not self._positions_stale:
                self._positions.update((txn["id"], start + offset) for offset, txn in enumerate(batch))
            return
        # A stable sort of two sorted runs is linear, and keeps earlier arrivals first on equal created.
        order = sorted(range(len(self._ids)), key=self._created.__getitem__)
        self._ids = [self._ids[index] for index in order]
        self._created = [self._created[index] for index in order]
        self._positions_stale = True

    def position(self, txn_id: str) -> int | None:
        """Where txn_id sits in the oldest-first order."""
        if self._positions_stale:
            self._positions = {txn_id: index for index, txn_id in enumerate(self._ids)}
            self._positions_stale = False
        return self._positions.get(txn_id)

    def span(self, created: RangeFilter | None) -> tuple[int, int]:
        """The half-open index range of transactions whose created lies within the filter."""
        if created is None:
            return 0, len(self._ids)
        low = 0 if created.lowest is None else bisect.bisect_left(self._created, created.lowest)
        high = len(self._ids) if created.highest is None else bisect.bisect_right(self._created, created.highest)
        return low, max(low, high)

    def page(
        self,
        span: tuple[int, int],
        keep: TransactionFilter | None,
        limit: int,
        *,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One newest-first page of kept transactions within span, and whether more follow in that direction."""
        low, high = span
        if ending_before is not None:
            start = max(self._cursor(ending_before, "ending_before") + 1, low)
            found = self._collect(range(start, high), keep, limit + 1)
            return found[:limit][::-1], len(found) > limit
        if starting_after is not None:
            high = min(self._cursor(starting_after, "starting_after"), high)
        found = self._collect(range(high - 1, low - 1, -1), keep, limit + 1)
        return found[:limit], len(found) > limit

    def _cursor(self, txn_id: str, param: str) -> int:
        """The position of a pagination cursor, or Stripe's error for an unknown one."""
        position = self.position(txn_id)
        if position is None:
            raise invalid_param(param, f"No such object: '{txn_id}'")
        return position

    def _collect(self, indexes: range, keep: TransactionFilter | None, wanted: int) -> list[dict[str, Any]]:
        """Up to wanted transactions at indexes (in that order) that keep accepts."""
        found: list[dict[str, Any]] = []
        for index in indexes:
            txn = self._by_id[self._ids[index]]
            if keep is None or keep(txn):
                found.append(txn)
                if len(found) == wanted:
                    break
        return found

    def payout_of(self, txn_id: str) -> str | None:
        """The payout that paid this transaction out, if any."""
        return self._payout_of.get(txn_id)

    def payout_size(self, payout_id: str) -> int:
        """How many transactions a payout holds."""
        return self._payout_sizes.get(payout_id, 0)

    def available_for_payout(self, now: int) -> list[dict[str, Any]]:
        """Transactions not yet paid out whose funds are available at now, all in one currency.

        The currency is that of the oldest such transaction; any others wait for another payout.
        """
        ready = [txn for txn_id in self._awaiting_payout if (txn := self._by_id[txn_id])["available_on"] <= now]
        return [txn for txn in ready if txn["currency"] == ready[0]["currency"]] if ready else []

    def make_available(self, now: int) -> int:
        """Make every pending transaction not yet paid out available at now (as test mode's instant
        availability would); how many were pending. Each is replaced by an updated copy."""
        pending = [txn for txn in self.awaiting_payout() if txn["available_on"] > now]
        for txn in pending:
            self._by_id[txn["id"]] = {**txn, "available_on": now, "status": "available"}
        return len(pending)

    def awaiting_payout(self) -> list[dict[str, Any]]:
        """Every transaction not yet paid out, oldest arrival first."""
        return [self._by_id[txn_id] for txn_id in self._awaiting_payout]

    def mark_paid_out(self, transactions: Iterable[dict[str, Any]], payout_id: str) -> None:
        """Record that payout_id paid these transactions out."""
        for txn in transactions:
            self._payout_of[txn["id"]] = payout_id
            self._awaiting_payout.pop(txn["id"], None)
            self._payout_sizes[payout_id] = self._payout_sizes.get(payout_id, 0) + 1

    def balances(self, now: int) -> dict[str, tuple[int, int]]:
        """Per currency, the (available, pending) nets not yet paid out."""
        balances: dict[str, tuple[int, int]] = {}
        for txn in self.awaiting_payout():
            available, pending = balances.get(txn["currency"], (0, 0))
            if txn["available_on"] <= now:
                available += txn["net"]
            else:
                pending += txn["net"]
            balances[txn["currency"]] = (available, pending)
        return balances
