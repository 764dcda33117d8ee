"""Checkout Sessions: validating create-session parameters and building the open session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_emulator.constants import (
    AWAITING_SETTLEMENT_STATUS,
    DEFAULT_SESSION_LIFETIME_SECONDS,
    EXPIRY_CLOCK_SKEW_SECONDS,
    MAX_EXPIRY_SECONDS,
    MIN_EXPIRY_SECONDS,
)
from devstack.stripe_emulator.errors import invalid_param, missing_param
from devstack.stripe_emulator.ids import random_id
from devstack.stripe_emulator.params import (
    currency_param,
    customer_email_param,
    metadata_param,
    optional_string,
    parse_integer,
    payment_method_types_param,
    required_integer,
    required_object,
    required_string,
    url_param,
)


@dataclass
class CheckoutRecord:
    """Everything the emulator knows about one Checkout Session."""

    session: dict[str, Any]
    line_items: list[dict[str, Any]]
    payment_intent_metadata: dict[str, str] = field(default_factory=dict)


def _line_item(item: Any, index: int) -> dict[str, Any]:
    """Validate one ``line_items[i]`` entry and return it as a line item object."""
    prefix = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise invalid_param(prefix, f"Invalid object: {prefix} must be an object.")
    if "price" in item:
        message = "The local emulator only supports price_data, not stored Prices."
        raise invalid_param(f"{prefix}[price]", message)
    price_data = required_object(item, "price_data", prefix)
    price_prefix = f"{prefix}[price_data]"
    product_data = required_object(price_data, "product_data", price_prefix)
    currency = currency_param(price_data, price_prefix)
    unit_amount = required_integer(price_data, "unit_amount", price_prefix, minimum=0)
    quantity = required_integer(item, "quantity", prefix, minimum=1)
    return {
        "id": random_id("li_test_"),
        "object": "item",
        "amount_subtotal": unit_amount * quantity,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "description": required_string(product_data, "name", f"{price_prefix}[product_data]"),
        "price": {"object": "price", "currency": currency, "unit_amount": unit_amount, "type": "one_time"},
        "quantity": quantity,
    }


def _line_items(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate ``line_items`` and check every item shares one currency."""
    raw_items = params.get("line_items")
    if raw_items is None or raw_items == "" or raw_items == {}:
        raise missing_param("line_items")
    if not isinstance(raw_items, list):
        raise invalid_param("line_items", "Invalid array: line_items must be a list.")
    items = [_line_item(item, index) for index, item in enumerate(raw_items)]
    if len({item["currency"] for item in items}) > 1:
        raise invalid_param("line_items", "All line items must use the same currency.")
    return items


def _require_payment_mode(params: dict[str, Any]) -> None:
    """Accept only ``mode=payment``: tracekit sells one-off passes, not subscriptions."""
    mode = required_string(params, "mode")
    if mode != "payment":
        raise invalid_param("mode", f"The local emulator only supports mode=payment, not {mode!r}.")


def _expires_at(params: dict[str, Any], now: int) -> int:
    """Return expires_at, enforcing Stripe's 30 minute to 24 hour window."""
    if params.get("expires_at") in (None, ""):
        return now + DEFAULT_SESSION_LIFETIME_SECONDS
    expires_at = parse_integer(params["expires_at"], "expires_at", minimum=0)
    if expires_at < now + MIN_EXPIRY_SECONDS - EXPIRY_CLOCK_SKEW_SECONDS:
        raise invalid_param(
            "expires_at",
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
        )
    if expires_at > now + MAX_EXPIRY_SECONDS + EXPIRY_CLOCK_SKEW_SECONDS:
        raise invalid_param(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
        )
    return expires_at


def _payment_intent_metadata(params: dict[str, Any]) -> dict[str, str]:
    """Return payment_intent_data[metadata], copied onto the PaymentIntent at payment."""
    payment_intent_data = params.get("payment_intent_data")
    if payment_intent_data is None or payment_intent_data == "":
        return {}
    if not isinstance(payment_intent_data, dict):
        raise invalid_param("payment_intent_data", "Invalid object: payment_intent_data must be an object.")
    return metadata_param(payment_intent_data, "metadata", "payment_intent_data")


def build_checkout_record(params: dict[str, Any], *, now: int, base_url: str) -> CheckoutRecord:
    """Validate create-session parameters and build the new open session."""
    _require_payment_mode(params)
    line_items = _line_items(params)
    amount = sum(item["amount_total"] for item in line_items)
    session_id = random_id("cs_test_", 58)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": url_param(params, "cancel_url", required=False),
        "client_reference_id": optional_string(params, "client_reference_id"),
        "created": now,
        "currency": line_items[0]["currency"],
        "customer_details": None,
        "customer_email": customer_email_param(params),
        "expires_at": _expires_at(params, now),
        "livemode": False,
        "metadata": metadata_param(params, "metadata"),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": payment_method_types_param(params),
        "payment_status": "unpaid",
        "status": "open",
        "success_url": url_param(params, "success_url", required=True),
        "url": f"{base_url}/c/pay/{session_id}",
    }
    return CheckoutRecord(session, line_items, _payment_intent_metadata(params))


def success_redirect_url(session: dict[str, Any]) -> str:
    """Return success_url with Stripe's ``{CHECKOUT_SESSION_ID}`` template filled in."""
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


def is_awaiting_settlement(session: dict[str, Any], payment_intent: dict[str, Any] | None) -> bool:
    """True for a completed bank-transfer session whose money has not arrived yet."""
    return (
        session["status"] == "complete"
        and payment_intent is not None
        and payment_intent["status"] == AWAITING_SETTLEMENT_STATUS
    )
