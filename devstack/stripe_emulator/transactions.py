"""Balance transactions (UK card pricing) and payouts, as Stripe builds them."""

from __future__ import annotations

from typing import Any

from devstack.stripe_emulator.constants import (
    AVAILABILITY_DELAY_SECONDS,
    CARD_FEE_FIXED,
    CARD_FEE_PER_MILLE,
    DISPUTE_FEE,
)
from devstack.stripe_emulator.ids import random_id


def card_fee(amount: int) -> int:
    """Stripe's UK standard card fee in pence: 1.5% rounded half up to a whole penny, plus 20p.

    ``card_fee(895) == 33`` (13.425p rounds to 13p) and ``card_fee(1000) == 35``.
    """
    return (amount * CARD_FEE_PER_MILLE + 500) // 1000 + CARD_FEE_FIXED


def _fee_details(fee: int, currency: str, description: str | None) -> list[dict[str, Any]]:
    """The fee breakdown Stripe attaches to a balance transaction (empty when there is no fee)."""
    if fee == 0:
        return []
    return [
        {"amount": fee, "application": None, "currency": currency, "description": description, "type": "stripe_fee"}
    ]


def build_balance_transaction(
    txn_id: str,
    txn_type: str,
    reporting_category: str,
    *,
    amount: int,
    currency: str,
    source: str,
    created: int,
    description: str | None,
    fee: int = 0,
    fee_description: str | None = None,
    available_on: int | None = None,
) -> dict[str, Any]:
    """Build a balance transaction; funds are available two days after created unless told otherwise."""
    available_on = created + AVAILABILITY_DELAY_SECONDS if available_on is None else available_on
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": _fee_details(fee, currency, fee_description),
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "pending" if created < available_on else "available",
        "type": txn_type,
    }


def charge_balance_transaction(charge: dict[str, Any]) -> dict[str, Any]:
    """The balance transaction of a successful charge, less the card fee."""
    return build_balance_transaction(
        charge["balance_transaction"],
        "charge",
        "charge",
        amount=charge["amount"],
        currency=charge["currency"],
        source=charge["id"],
        created=charge["created"],
        description=None,
        fee=card_fee(charge["amount"]),
        fee_description="Stripe processing fees",
    )


def refund_balance_transaction(refund: dict[str, Any]) -> dict[str, Any]:
    """The balance transaction of a refund: the amount leaves the balance and no fee is returned."""
    return build_balance_transaction(
        refund["balance_transaction"],
        "refund",
        "refund",
        amount=-refund["amount"],
        currency=refund["currency"],
        source=refund["id"],
        created=refund["created"],
        description="REFUND FOR CHARGE",
    )


def dispute_withdrawal_transaction(dispute: dict[str, Any], *, now: int) -> dict[str, Any]:
    """The adjustment that takes a disputed amount, plus the dispute fee, out of the balance."""
    return build_balance_transaction(
        random_id("txn_test_"),
        "adjustment",
        "dispute",
        amount=-dispute["amount"],
        currency=dispute["currency"],
        source=dispute["id"],
        created=now,
        description=f"Chargeback withdrawal for {dispute['charge']}",
        fee=DISPUTE_FEE,
        fee_description="Dispute fee",
    )


def dispute_reversal_transaction(dispute: dict[str, Any], *, now: int) -> dict[str, Any]:
    """The adjustment that gives a won dispute's amount back.

    Kept simple: the dispute fee is not returned here (fee 0), whatever the
    card network's rules would say about refunding it.
    """
    return build_balance_transaction(
        random_id("txn_test_"),
        "adjustment",
        "dispute_reversal",
        amount=dispute["amount"],
        currency=dispute["currency"],
        source=dispute["id"],
        created=now,
        description=f"Chargeback reversal for {dispute['charge']}",
    )


def build_payout(amount: int, currency: str, *, now: int) -> dict[str, Any]:
    """Build an automatic standard payout that has already been paid (arrived) at now."""
    return {
        "id": random_id("po_test_"),
        "object": "payout",
        "amount": amount,
        "arrival_date": now,
        "automatic": True,
        "balance_transaction": random_id("txn_test_"),
        "created": now,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": None,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "reconciliation_status": "completed",
        "source_type": "card",
        "statement_descriptor": None,
        "status": "paid",
        "type": "bank_account",
    }


def payout_balance_transaction(payout: dict[str, Any]) -> dict[str, Any]:
    """The payout's own balance transaction: the payout amount leaves the balance at once."""
    return build_balance_transaction(
        payout["balance_transaction"],
        "payout",
        "payout",
        amount=-payout["amount"],
        currency=payout["currency"],
        source=payout["id"],
        created=payout["created"],
        description="STRIPE PAYOUT",
        available_on=payout["created"],
    )


def render_balance_transaction(txn: dict[str, Any], now: int) -> dict[str, Any]:
    """A copy of a stored balance transaction with its status as of now.

    Stored transactions never change after creation (payout membership is kept
    by the ledger), so a shallow copy is enough.
    """
    return {**txn, "status": "available" if now >= txn["available_on"] else "pending"}
