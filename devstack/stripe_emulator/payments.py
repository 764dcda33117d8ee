"""Money moving after payment: refunds, disputes, payouts, and seeding paid charges for benchmarks."""

from __future__ import annotations

import copy
from typing import Any, Sequence

from devstack.stripe_emulator.constants import CLOSED_DISPUTE_STATUSES
from devstack.stripe_emulator.errors import ApiError, invalid_param
from devstack.stripe_emulator.ids import random_ids
from devstack.stripe_emulator.resources import (
    RefundRequest,
    build_charge,
    build_dispute,
    build_refund,
    dispute_amount,
    refund_amount,
    seeded_payment_intent,
    unrefunded_amount,
)
from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.transactions import (
    build_payout,
    charge_balance_transaction,
    dispute_reversal_transaction,
    dispute_withdrawal_transaction,
    payout_balance_transaction,
    refund_balance_transaction,
)


class MoneyMovements:
    """Refunds, disputes and payouts, each with its balance transactions and events.

    Each public method takes the state's lock and returns copies plus the
    events to deliver (delivery is the caller's, outside the lock).
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def create_refund(self, request: RefundRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Refund a charge; return a copy of the Refund and its two events, oldest first."""
        state = self._state
        with state.lock:
            charge = self._refund_target_locked(request)
            amount = refund_amount(charge, request.amount)
            refund = build_refund(charge, amount, request, now=state.now())
            state.refunds[refund["id"]] = refund
            state.ledger.add([refund_balance_transaction(refund)])
            charge["amount_refunded"] += amount
            charge["refunded"] = unrefunded_amount(charge) == 0
            events = [state.events.record("refund.created", refund), state.events.record("charge.refunded", charge)]
            return copy.deepcopy(refund), events

    def _refund_target_locked(self, request: RefundRequest) -> dict[str, Any]:
        """Find the charge a refund request names by charge id, PaymentIntent id, or both."""
        if request.charge is None:
            return self._state.paid_charge(str(request.payment_intent))
        charge = self._state.charge(request.charge, param="charge")
        if request.payment_intent is not None and request.payment_intent != charge["payment_intent"]:
            message = f"Charge {request.charge} does not belong to PaymentIntent {request.payment_intent}."
            raise invalid_param("payment_intent", message)
        return charge

    def open_dispute(
        self, payment_intent_id: str, amount: int | None, reason: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open a dispute on a paid charge and record charge.dispute.created."""
        state = self._state
        with state.lock:
            charge = state.paid_charge(payment_intent_id)
            # A card payment can be charged back only once.
            if charge["disputed"]:
                raise ApiError(400, f"Charge {charge['id']} has already been disputed.", code="charge_disputed")
            dispute = build_dispute(charge, dispute_amount(charge, amount), reason, now=state.now())
            state.disputes[dispute["id"]] = dispute
            self._add_dispute_transaction_locked(dispute, dispute_withdrawal_transaction(dispute, now=state.now()))
            charge["disputed"] = True
            event = state.events.record("charge.dispute.created", dispute)
            return copy.deepcopy(dispute), event

    def close_dispute(self, dispute_id: str, won: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark an open dispute won or lost and record charge.dispute.closed."""
        state = self._state
        with state.lock:
            dispute = state.dispute(dispute_id)
            if dispute["status"] in CLOSED_DISPUTE_STATUSES:
                message = f"Dispute {dispute_id} is already closed with a status of {dispute['status']!r}."
                raise ApiError(400, message, code="dispute_already_closed")
            dispute["status"] = "won" if won else "lost"
            if won:
                self._add_dispute_transaction_locked(dispute, dispute_reversal_transaction(dispute, now=state.now()))
            event = state.events.record("charge.dispute.closed", dispute)
            return copy.deepcopy(dispute), event

    def _add_dispute_transaction_locked(self, dispute: dict[str, Any], txn: dict[str, Any]) -> None:
        """Store a dispute's withdrawal or reinstatement and list it on the dispute, as Stripe does."""
        self._state.ledger.add([txn])
        dispute["balance_transactions"].append(dict(txn))

    def make_balance_available(self) -> int:
        """Pending funds not yet paid out become available now; how many transactions were pending."""
        state = self._state
        with state.lock:
            return state.ledger.make_available(state.now())

    def create_payout(self, now: int | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Pay out what is available at now (default: the clock); a copy and its payout.paid event, or None."""
        state = self._state
        with state.lock:
            now = state.now() if now is None else now
            contents = state.ledger.available_for_payout(now)
            amount = sum(txn["net"] for txn in contents)
            if not contents or amount <= 0:
                return None
            payout = build_payout(amount, contents[0]["currency"], now=now)
            state.payouts[payout["id"]] = payout
            state.ledger.mark_paid_out(contents, payout["id"])
            state.ledger.add([payout_balance_transaction(payout)], awaiting_payout=False)
            event = state.events.record("payout.paid", payout)
            return copy.deepcopy(payout), event

    def seed_paid_charges(self, items: Sequence[tuple[str, int, str, int]]) -> list[str]:
        """Store succeeded PaymentIntents, their Charges and balance transactions; return the intents' ids."""
        count = len(items)
        intent_ids = random_ids("pi_test_", count)
        charge_ids = random_ids("ch_test_", count)
        txn_ids = random_ids("txn_test_", count)
        intents, charges, transactions = [], [], []
        for item, intent_id, charge_id, txn_id in zip(items, intent_ids, charge_ids, txn_ids, strict=True):
            intent = seeded_payment_intent(intent_id, charge_id, *item)
            charge = build_charge(intent, now=intent["created"], balance_transaction=txn_id)
            intents.append(intent)
            charges.append(charge)
            transactions.append(charge_balance_transaction(charge))
        with self._state.lock:
            self._state.payment_intents.update((intent["id"], intent) for intent in intents)
            self._state.charges.update((charge["id"], charge) for charge in charges)
            self._state.ledger.add(transactions)
        return intent_ids
