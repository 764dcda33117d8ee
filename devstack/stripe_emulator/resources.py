"""Building the money objects: Charges, Refunds, Disputes and seeded PaymentIntents."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_emulator.constants import DISPUTE_REASONS, REFUND_REASONS
from devstack.stripe_emulator.errors import ApiError, invalid_param
from devstack.stripe_emulator.ids import random_id
from devstack.stripe_emulator.money import format_money
from devstack.stripe_emulator.params import choice_param, metadata_param, optional_amount, optional_string


def build_charge(payment_intent: dict[str, Any], *, now: int, balance_transaction: str) -> dict[str, Any]:
    """Build the succeeded Charge behind a PaymentIntent's ``latest_charge``.

    Metadata starts empty on purpose: Stripe does not copy the PaymentIntent's
    metadata onto its charges, and code that assumes it does should fail here too.
    """
    amount = payment_intent["amount"]
    return {
        "id": payment_intent["latest_charge"],
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "balance_transaction": balance_transaction,
        "captured": True,
        "created": now,
        "currency": payment_intent["currency"],
        "disputed": False,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent["id"],
        "refunded": False,
        "status": "succeeded",
    }


def unrefunded_amount(charge: dict[str, Any]) -> int:
    """Pence still available to refund on a charge."""
    return charge["amount"] - charge["amount_refunded"]


@dataclass(frozen=True)
class RefundRequest:
    """A validated refund request: which payment, how much (None = the rest) and why."""

    payment_intent: str | None = None
    charge: str | None = None
    amount: int | None = None
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def parse_refund_request(params: dict[str, Any]) -> RefundRequest:
    """Validate POST /v1/refunds parameters (the charge itself is checked later)."""
    payment_intent = optional_string(params, "payment_intent")
    charge = optional_string(params, "charge")
    if payment_intent is None and charge is None:
        message = "One of the following params should be provided for this request: payment_intent or charge."
        raise ApiError(400, message, code="parameter_missing")
    return RefundRequest(
        payment_intent=payment_intent,
        charge=charge,
        amount=optional_amount(params),
        reason=choice_param(params, "reason", REFUND_REASONS),
        metadata=metadata_param(params, "metadata"),
    )


def refund_amount(charge: dict[str, Any], requested: int | None) -> int:
    """Return how much to refund, refusing anything beyond what is still unrefunded."""
    remaining = unrefunded_amount(charge)
    if remaining <= 0:
        raise ApiError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
    if requested is None:
        return remaining
    if requested < 1:
        message = "This value must be greater than or equal to 1."
        raise ApiError(400, message, code="parameter_invalid_integer", param="amount")
    if requested > remaining:
        currency = charge["currency"]
        message = (
            f"Refund amount ({format_money(requested, currency)}) is greater than "
            f"unrefunded amount on charge ({format_money(remaining, currency)})"
        )
        raise ApiError(400, message, code="amount_too_large", param="amount")
    return requested


def build_refund(charge: dict[str, Any], amount: int, request: RefundRequest, *, now: int) -> dict[str, Any]:
    """Build a succeeded Refund of amount pence against charge, naming its balance transaction."""
    return {
        "id": random_id("re_test_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": random_id("txn_test_"),
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "metadata": dict(request.metadata),
        "payment_intent": charge["payment_intent"],
        "reason": request.reason,
        "status": "succeeded",
    }


def dispute_amount(charge: dict[str, Any], requested: int | None) -> int:
    """Return the disputed amount: the whole charge unless a smaller amount is given."""
    if requested is None:
        return charge["amount"]
    if requested < 1:
        message = "This value must be greater than or equal to 1."
        raise ApiError(400, message, code="parameter_invalid_integer", param="amount")
    if requested > charge["amount"]:
        currency = charge["currency"]
        message = (
            f"Dispute amount ({format_money(requested, currency)}) is greater than "
            f"the charge amount ({format_money(charge['amount'], currency)})"
        )
        raise ApiError(400, message, code="amount_too_large", param="amount")
    return requested


def build_dispute(charge: dict[str, Any], amount: int, reason: str, *, now: int) -> dict[str, Any]:
    """Build a newly opened Dispute (a chargeback) against charge."""
    if reason not in DISPUTE_REASONS:
        raise invalid_param("reason", f"Invalid reason: must be one of {', '.join(DISPUTE_REASONS)}.")
    return {
        "id": random_id("dp_test_"),
        "object": "dispute",
        "amount": amount,
        # The withdrawal (and, if won, the reinstatement) are added as they happen.
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "livemode": False,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "needs_response",
    }


def seeded_payment_intent(
    payment_intent_id: str, charge_id: str, order_reference: str, amount: int, currency: str, created: int
) -> dict[str, Any]:
    """A succeeded PaymentIntent for seed_paid_charges, checking the row first."""
    if not isinstance(amount, int) or amount < 1:
        raise ValueError(f"amount must be a positive integer of pence, not {amount!r}")
    if not isinstance(currency, str) or re.fullmatch(r"[a-z]{3}", currency) is None:
        raise ValueError(f"currency must be a lower-case ISO code such as 'gbp', not {currency!r}")
    if not isinstance(created, int) or created < 0:
        raise ValueError(f"created must be a Unix time in seconds, not {created!r}")
    return {
        "id": payment_intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "created": created,
        "currency": currency,
        "latest_charge": charge_id,
        "livemode": False,
        "metadata": {"order_reference": str(order_reference)},
        "status": "succeeded",
    }
