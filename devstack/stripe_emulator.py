"""A local Stripe emulator that the official ``stripe`` Python SDK can talk to.

It speaks the slice of the Stripe REST API that tracekit uses (Checkout
Sessions, Events, PaymentIntents, Charges, Refunds, Disputes, Balance
Transactions and Payouts), serves a
hosted checkout page with Pay, Decline and "pay by bank transfer" buttons, and
delivers webhooks signed exactly the way Stripe signs them, so the real webhook
verification code runs unchanged against it.

For testing the unhappy paths it can also settle bank transfers either way
(``settle_async``), refund and dispute payments the way the Stripe dashboard
would (``refund``, ``dispute``, ``close_dispute``) and pretend to be down or
slow (``fail_next_requests``, ``delay_next_requests``). A developer dashboard
at ``/_emulator`` offers the same controls in a browser.

For finance reconciliation every movement of money gets a balance transaction
with UK card pricing (charges, refunds, dispute withdrawals and reversals), and
``run_payout`` pays the available balance out. ``seed_paid_charges`` fills the
ledger directly for benchmarks.

Run it on its own with::

    python -m devstack.stripe_emulator --port 12111 --webhook-url URL --webhook-secret S

and point the SDK at it with
``stripe.StripeClient("sk_test_...", base_addresses={"api": emulator.base_url})``.

Only the standard library is used so it runs anywhere Python runs. Money is
always integer minor units (pence). Request bodies are never logged because
they carry buyers' email addresses.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import hashlib
import hmac
import html
import itertools
import json
import logging
import re
import secrets
import signal
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "ApiError",
    "DashboardView",
    "MalformedFormError",
    "StripeEmulator",
    "decode_stripe_form",
    "format_money",
    "main",
    "sign_webhook_payload",
]

# A fixed name, so logs read the same under `python -m` (where __name__ is "__main__").
LOGGER = logging.getLogger("devstack.stripe_emulator")

API_VERSION = "2024-06-20"
DEFAULT_WEBHOOK_SECRET = "whsec_local_emulator"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
DEFAULT_SWEEP_INTERVAL_SECONDS = 5.0
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
DEFAULT_SESSION_LIFETIME_SECONDS = 24 * 60 * 60
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
# Callers usually compute expires_at as "now + 30 min" a moment before the
# request arrives; a little slack stops that race from failing spuriously.
EXPIRY_CLOCK_SKEW_SECONDS = 5
MAX_BODY_BYTES = 1_000_000
# A local stand-in for a payment service: never reachable from another machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
DECLINE_MESSAGE = "Your card was declined. Try again or use a different card."
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
CLOSED_DISPUTE_STATUSES = ("won", "lost")
# A bank transfer's PaymentIntent waits in this status until settle_async is called.
AWAITING_SETTLEMENT_STATUS = "processing"
INJECTED_FAILURE_MESSAGE = "Injected failure from the local Stripe emulator (fail_next_requests); please retry."
# The newest events shown on the dashboard; older ones stay available at /_emulator/events.
DASHBOARD_EVENT_LIMIT = 50
# The newest payments and payouts shown on the dashboard (seeding can create 100,000 payments).
DASHBOARD_ROW_LIMIT = 200
# UK standard pricing for domestic cards: 1.5% + 20p per successful charge, and £20 per dispute.
CARD_FEE_PER_MILLE = 15
CARD_FEE_FIXED = 20
DISPUTE_FEE = 2000
# Funds from a transaction become available (and can be paid out) this long after it is created.
AVAILABILITY_DELAY_SECONDS = 2 * 24 * 60 * 60
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")
ID_ALPHABET = string.ascii_letters + string.digits


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """A Stripe-shaped API error, rendered as ``{"error": {...}}`` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body Stripe would send for this error."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing_param(name: str) -> ApiError:
    """Build the error Stripe returns when a required parameter is absent."""
    return ApiError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def invalid_param(name: str, message: str) -> ApiError:
    """Build the error Stripe returns when a parameter has a bad value."""
    return ApiError(400, message, code="parameter_invalid", param=name)


def resource_missing(kind: str, object_id: str, param: str = "id") -> ApiError:
    """Build the 404 Stripe returns for an id it does not know."""
    return ApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def session_not_open(status: str, action: str) -> ApiError:
    """Build the error for acting on a session that is already complete or expired."""
    message = (
        f'Only Checkout Sessions with a status in ["open"] can be {action}. '
        f"This Checkout Session has a status of {status!r}."
    )
    return ApiError(400, message, code="checkout_session_not_open")


# ---------------------------------------------------------------------------
# Decoding Stripe's bracketed form encoding
# ---------------------------------------------------------------------------


class MalformedFormError(ValueError):
    """The request body or query string is not valid Stripe form encoding."""


_KEY_PATTERN = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT_PATTERN = re.compile(r"\[([^\[\]]*)\]")


def decode_stripe_form(encoded: str) -> dict[str, Any]:
    """Decode ``a[b][0][c]=1`` style form data into nested dicts and lists.

    Values stay strings, exactly as they arrived; the API layer converts the
    fields that Stripe defines as integers.
    """
    try:
        pairs = urllib.parse.parse_qsl(encoded, keep_blank_values=True, errors="strict", max_num_fields=1000)
    except ValueError as error:
        raise MalformedFormError(f"Could not parse the request parameters: {error}") from None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        _assign_nested_value(tree, _split_bracketed_key(key), value)
    # The top level is always a dict of parameter names, even if they are digits.
    return {key: _lists_from_indexed_dicts(value) for key, value in tree.items()}


def _split_bracketed_key(key: str) -> list[str]:
    """Split ``line_items[0][quantity]`` into ``["line_items", "0", "quantity"]``."""
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        raise MalformedFormError(f"Invalid parameter name: {key!r}.")
    return [match.group(1), *_SEGMENT_PATTERN.findall(match.group(2))]


def _assign_nested_value(tree: dict[str, Any], segments: list[str], value: str) -> None:
    """Store ``value`` at the nested position named by ``segments``."""
    node = tree
    for depth, segment in enumerate(segments):
        # An empty segment ("expand[]=x") appends, as Rails-style encoders intend.
        key = str(len(node)) if segment == "" else segment
        if depth == len(segments) - 1:
            if isinstance(node.get(key), dict):
                raise MalformedFormError(f"Parameter {segments[0]!r} is both a value and an object.")
            node[key] = value
            return
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise MalformedFormError(f"Parameter {segments[0]!r} is both a value and an object.")
        node = child


def _lists_from_indexed_dicts(node: Any) -> Any:
    """Turn ``{"0": a, "1": b}`` into ``[a, b]`` at every level below the top."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexed_dicts(value) for key, value in node.items()}
    if converted and set(converted) == {str(index) for index in range(len(converted))}:
        return [converted[str(index)] for index in range(len(converted))]
    return converted


# ---------------------------------------------------------------------------
# Parameter validation
# ---------------------------------------------------------------------------


def _param_name(prefix: str, key: str) -> str:
    """Name a nested parameter the way Stripe's error messages do."""
    return f"{prefix}[{key}]" if prefix else key


def _optional_string(container: dict[str, Any], key: str, prefix: str = "") -> str | None:
    """Return a string parameter, or None when it is absent or blank."""
    value = container.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        name = _param_name(prefix, key)
        raise invalid_param(name, f"Invalid string: {name} must be a string.")
    return value


def _required_string(container: dict[str, Any], key: str, prefix: str = "") -> str:
    """Return a string parameter that must be present."""
    value = _optional_string(container, key, prefix)
    if value is None:
        raise missing_param(_param_name(prefix, key))
    return value


def _required_object(container: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
    """Return a nested-object parameter that must be present."""
    value = container.get(key)
    if value is None or value == "":
        raise missing_param(_param_name(prefix, key))
    if not isinstance(value, dict):
        name = _param_name(prefix, key)
        raise invalid_param(name, f"Invalid object: {name} must be an object.")
    return value


def _integer(value: Any, name: str, *, minimum: int) -> int:
    """Convert a form string to an int, as Stripe does for integer fields."""
    if not isinstance(value, str) or re.fullmatch(r"-?\d+", value) is None:
        raise ApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name)
    number = int(value)
    if number < minimum:
        message = f"This value must be greater than or equal to {minimum}."
        raise ApiError(400, message, code="parameter_invalid_integer", param=name)
    return number


def _required_integer(container: dict[str, Any], key: str, prefix: str, *, minimum: int) -> int:
    """Return an integer parameter that must be present."""
    if container.get(key) in (None, ""):
        raise missing_param(_param_name(prefix, key))
    return _integer(container[key], _param_name(prefix, key), minimum=minimum)


def _metadata(container: dict[str, Any], key: str, prefix: str = "") -> dict[str, str]:
    """Return a metadata map of strings (absent means empty)."""
    value = container.get(key)
    if value is None or value == "":
        return {}
    if isinstance(value, list):
        # Keys "0", "1", ... decode as a list; metadata is always a map, so undo that.
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise invalid_param(_param_name(prefix, key), "Invalid metadata: values must be strings.")
    # Stripe treats an empty value as "unset this key".
    return {name: item for name, item in value.items() if item != ""}


def _url(container: dict[str, Any], key: str, *, required: bool) -> str | None:
    """Return an absolute http(s) URL parameter."""
    value = _required_string(container, key) if required else _optional_string(container, key)
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value)
    # Control characters would let a URL smuggle headers into our 303 redirect.
    has_control_characters = any(ord(character) < 33 for character in value)
    if parts.scheme not in ("http", "https") or not parts.netloc or has_control_characters:
        raise invalid_param(key, "Not a valid URL")
    return value


def _currency(price_data: dict[str, Any], prefix: str) -> str:
    """Return a lower-case three-letter ISO currency code."""
    currency = _required_string(price_data, "currency", prefix).lower()
    if re.fullmatch(r"[a-z]{3}", currency) is None:
        raise invalid_param(_param_name(prefix, "currency"), f"Invalid currency: {currency}")
    return currency


def _customer_email(params: dict[str, Any]) -> str | None:
    """Return the optional customer_email, rejecting obviously invalid ones."""
    email = _optional_string(params, "customer_email")
    if email is not None and re.fullmatch(r"[^@\s]+@[^@\s]+", email) is None:
        raise invalid_param("customer_email", "Invalid email address.")
    return email


def _payment_method_types(params: dict[str, Any]) -> list[str]:
    """Return payment_method_types, defaulting to card as Stripe effectively does."""
    value = params.get("payment_method_types")
    if value is None or value == "":
        return ["card"]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        message = "Invalid array: payment_method_types must be a list of strings."
        raise invalid_param("payment_method_types", message)
    return value


def _expand_fields(params: dict[str, Any]) -> set[str]:
    """Return the set of fields the caller asked to expand."""
    value = params.get("expand")
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


# ---------------------------------------------------------------------------
# Checkout Session construction
# ---------------------------------------------------------------------------


def random_id(prefix: str, length: int = 24) -> str:
    """Return a Stripe-looking object id such as ``cs_test_a1B2...``."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


@dataclass
class CheckoutRecord:
    """Everything the emulator knows about one Checkout Session."""

    session: dict[str, Any]
    line_items: list[dict[str, Any]]
    payment_intent_metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class DashboardView:
    """Copies of what the developer dashboard shows; lists are newest first."""

    sessions: list[dict[str, Any]]
    payment_intents: list[dict[str, Any]]
    charges: dict[str, dict[str, Any]]
    disputes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    payouts: list[dict[str, Any]] = field(default_factory=list)
    # Transactions held by each payout shown.
    payout_sizes: dict[str, int] = field(default_factory=dict)
    # Per currency: (available, pending) pence not yet paid out.
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)


def _line_item(item: Any, index: int) -> dict[str, Any]:
    """Validate one ``line_items[i]`` entry and return it as a line item object."""
    prefix = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise invalid_param(prefix, f"Invalid object: {prefix} must be an object.")
    if "price" in item:
        message = "The local emulator only supports price_data, not stored Prices."
        raise invalid_param(f"{prefix}[price]", message)
    price_data = _required_object(item, "price_data", prefix)
    price_prefix = f"{prefix}[price_data]"
    product_data = _required_object(price_data, "product_data", price_prefix)
    currency = _currency(price_data, price_prefix)
    unit_amount = _required_integer(price_data, "unit_amount", price_prefix, minimum=0)
    quantity = _required_integer(item, "quantity", prefix, minimum=1)
    return {
        "id": random_id("li_test_"),
        "object": "item",
        "amount_subtotal": unit_amount * quantity,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "description": _required_string(product_data, "name", f"{price_prefix}[product_data]"),
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
    mode = _required_string(params, "mode")
    if mode != "payment":
        raise invalid_param("mode", f"The local emulator only supports mode=payment, not {mode!r}.")


def _expires_at(params: dict[str, Any], now: int) -> int:
    """Return expires_at, enforcing Stripe's 30 minute to 24 hour window."""
    if params.get("expires_at") in (None, ""):
        return now + DEFAULT_SESSION_LIFETIME_SECONDS
    expires_at = _integer(params["expires_at"], "expires_at", minimum=0)
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
    return _metadata(payment_intent_data, "metadata", "payment_intent_data")


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
        "cancel_url": _url(params, "cancel_url", required=False),
        "client_reference_id": _optional_string(params, "client_reference_id"),
        "created": now,
        "currency": line_items[0]["currency"],
        "customer_details": None,
        "customer_email": _customer_email(params),
        "expires_at": _expires_at(params, now),
        "livemode": False,
        "metadata": _metadata(params, "metadata"),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": _payment_method_types(params),
        "payment_status": "unpaid",
        "status": "open",
        "success_url": _url(params, "success_url", required=True),
        "url": f"{base_url}/c/pay/{session_id}",
    }
    return CheckoutRecord(session, line_items, _payment_intent_metadata(params))


def success_redirect_url(session: dict[str, Any]) -> str:
    """Return success_url with Stripe's ``{CHECKOUT_SESSION_ID}`` template filled in."""
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


def list_object(items: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    """Wrap items in Stripe's list envelope."""
    return {"object": "list", "data": items, "has_more": has_more, "url": url}


def page_limit(params: dict[str, Any]) -> int:
    """Return the ``limit`` parameter: 1 to 100, default 10."""
    limit = DEFAULT_LIST_LIMIT
    if params.get("limit") not in (None, ""):
        limit = _integer(params["limit"], "limit", minimum=1)
    if limit > MAX_LIST_LIMIT:
        raise invalid_param("limit", f"This value must be less than or equal to {MAX_LIST_LIMIT}.")
    return limit


def paginate(newest_first: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Apply Stripe's ``limit`` / ``starting_after`` cursor pagination."""
    limit = page_limit(params)
    start = 0
    cursor = _optional_string(params, "starting_after")
    if cursor is not None:
        ids = [item["id"] for item in newest_first]
        if cursor not in ids:
            raise invalid_param("starting_after", f"No such object: '{cursor}'")
        start = ids.index(cursor) + 1
    page = newest_first[start : start + limit]
    return list_object(page, url, has_more=start + limit < len(newest_first))


# ---------------------------------------------------------------------------
# Charges, refunds and disputes
# ---------------------------------------------------------------------------


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
    payment_intent = _optional_string(params, "payment_intent")
    charge = _optional_string(params, "charge")
    if payment_intent is None and charge is None:
        message = "One of the following params should be provided for this request: payment_intent or charge."
        raise ApiError(400, message, code="parameter_missing")
    return RefundRequest(
        payment_intent=payment_intent,
        charge=charge,
        amount=_optional_amount(params),
        reason=_choice(params, "reason", REFUND_REASONS),
        metadata=_metadata(params, "metadata"),
    )


def _optional_amount(params: dict[str, Any]) -> int | None:
    """Return an optional positive ``amount`` in pence (absent or blank means None)."""
    if params.get("amount") in (None, ""):
        return None
    return _integer(params["amount"], "amount", minimum=1)


def _choice(params: dict[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    """Return an optional string parameter that must be one of allowed."""
    value = _optional_string(params, key)
    if value is not None and value not in allowed:
        raise invalid_param(key, f"Invalid {key}: must be one of {', '.join(allowed)}.")
    return value


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


def is_awaiting_settlement(session: dict[str, Any], payment_intent: dict[str, Any] | None) -> bool:
    """True for a completed bank-transfer session whose money has not arrived yet."""
    return (
        session["status"] == "complete"
        and payment_intent is not None
        and payment_intent["status"] == AWAITING_SETTLEMENT_STATUS
    )


# ---------------------------------------------------------------------------
# Balance transactions and payouts
# ---------------------------------------------------------------------------


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


@dataclass(frozen=True)
class RangeFilter:
    """A Stripe range filter (``created[gte]=...&created[lt]=...``) as inclusive bounds."""

    lowest: int | None = None
    highest: int | None = None

    def matches(self, value: int) -> bool:
        """True when value lies within the bounds."""
        return (self.lowest is None or value >= self.lowest) and (self.highest is None or value <= self.highest)


def parse_range_filter(params: dict[str, Any], key: str) -> RangeFilter | None:
    """Read ``key`` as an exact Unix time or a dict of gt / gte / lt / lte bounds (None when absent)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        exact = _integer(value, key, minimum=0)
        return RangeFilter(exact, exact)
    if not isinstance(value, dict):
        raise invalid_param(key, f"Invalid {key}: must be an integer or an object of gt, gte, lt and lte.")
    unknown = sorted(set(value) - set(RANGE_OPERATORS))
    if unknown:
        raise invalid_param(f"{key}[{unknown[0]}]", f"Received unknown parameter: {key}[{unknown[0]}]")
    bounds = {operator: _integer(bound, f"{key}[{operator}]", minimum=0) for operator, bound in value.items()}
    lows = [bounds[op] + (op == "gt") for op in ("gt", "gte") if op in bounds]
    highs = [bounds[op] - (op == "lt") for op in ("lt", "lte") if op in bounds]
    return RangeFilter(max(lows) if lows else None, min(highs) if highs else None)


def _expansion_tree(paths: Iterable[str], prefix: str = "") -> dict[str, Any]:
    """Turn expand paths (those starting with prefix) into a tree of fields to expand.

    ``["data.source.payment_intent"]`` with prefix ``"data."`` gives
    ``{"source": {"payment_intent": {}}}``: expanding a field implies expanding its parents.
    """
    tree: dict[str, Any] = {}
    for path in paths:
        if not path.startswith(prefix) or path == prefix:
            continue
        node = tree
        for segment in path[len(prefix) :].split("."):
            node = node.setdefault(segment, {})
    return tree


_ID_BYTE_TABLE = bytes(ord(ID_ALPHABET[byte % len(ID_ALPHABET)]) for byte in range(256))


def random_ids(prefix: str, count: int, length: int = 24) -> list[str]:
    """Many Stripe-looking ids at once, fast enough to seed 100,000 objects.

    Mapping random bytes onto 62 characters is very slightly biased, which does
    not matter for test ids.
    """
    text = secrets.token_bytes(count * length).translate(_ID_BYTE_TABLE).decode("ascii")
    return [prefix + text[start : start + length] for start in range(0, count * length, length)]


_TransactionFilter = Callable[[dict[str, Any]], bool]


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
        keep: _TransactionFilter | None,
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

    def _collect(self, indexes: range, keep: _TransactionFilter | None, wanted: int) -> list[dict[str, Any]]:
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

    def awaiting_payout(self) -> list[dict[str, Any]]:
        """Every transaction not yet paid out, oldest arrival first."""
        return [self._by_id[txn_id] for txn_id in self._awaiting_payout]

    def mark_paid_out(self, transactions: Iterable[dict[str, Any]], payout_id: str) -> None:
        """Record that payout_id paid these transactions out."""
        for txn in transactions:
            self._payout_of[txn["id"]] = payout_id
            self._awaiting_payout.pop(txn["id"], None)
            self._payout_sizes[payout_id] = self._payout_sizes.get(payout_id, 0) + 1


# ---------------------------------------------------------------------------
# Webhook signing and delivery
# ---------------------------------------------------------------------------


def sign_webhook_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the ``Stripe-Signature`` header value Stripe would send for payload."""
    signed_content = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed_content, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Treat redirects as failures: Stripe never follows them for webhooks."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Return None so urllib raises the 3xx as an HTTPError."""
        return None


# No proxies: the webhook target is a local app, and an HTTP(S)_PROXY variable
# in the environment would otherwise swallow requests to localhost.
_WEBHOOK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects())


def post_webhook(url: str, payload: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST one webhook and return its HTTP status, or 0 if no response came back."""
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with _WEBHOOK_OPENER.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def is_successful_delivery(status: int) -> bool:
    """Stripe counts only 2xx responses as a successful delivery."""
    return 200 <= status < 300


# ---------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------


@dataclass
class _IdempotentResult:
    """A request seen under one Idempotency-Key; status/body stay None while in flight."""

    fingerprint: str
    status: int | None = None
    body: bytes | None = None


class IdempotencyStore:
    """Remembers successful POST responses per (API key, Idempotency-Key)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._results: dict[tuple[str, str], _IdempotentResult] = {}

    def begin(self, scope: tuple[str, str], fingerprint: str) -> tuple[int, bytes] | None:
        """Reserve the key, or return the stored response to replay."""
        with self._lock:
            result = self._results.get(scope)
            if result is None:
                self._results[scope] = _IdempotentResult(fingerprint)
                return None
            if result.fingerprint != fingerprint:
                raise _idempotency_mismatch(scope[1])
            if result.status is None or result.body is None:
                raise _idempotency_in_flight(scope[1])
            return result.status, result.body

    def finish(self, scope: tuple[str, str], status: int, body: bytes) -> None:
        """Store a 2xx response for replay; forget anything else so the key can be retried."""
        with self._lock:
            if is_successful_delivery(status):
                self._results[scope].status = status
                self._results[scope].body = body
            else:
                # Like Stripe, failed validation saves nothing, so a corrected retry works.
                self._results.pop(scope, None)


def _idempotency_mismatch(key: str) -> ApiError:
    """Build Stripe's error for reusing a key with different parameters."""
    message = (
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request."
    )
    return ApiError(400, message, error_type="idempotency_error")


def _idempotency_in_flight(key: str) -> ApiError:
    """Build the 409 for a concurrent request using the same key (the SDK retries 409s)."""
    message = (
        f"There is currently another in-progress request using this Idempotent Key: '{key}'. Please try again later."
    )
    return ApiError(409, message, error_type="invalid_request_error", code="idempotency_key_in_use")


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Identify a request's parameters so a reused key can be compared."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


# ---------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------


class StripeEmulator:
    """An in-process fake of Stripe Checkout, served over HTTP for the real SDK.

    ``pay``, ``decline`` and ``expire`` raise :class:`ApiError` (404 for an
    unknown session, 400 for one that is no longer open). The other test
    controls (``pay_async``, ``settle_async``, ``refund``, ``dispute`` and
    ``close_dispute``) raise :class:`ApiError` in the same way, with the code
    Stripe would use.

    Every charge, refund and dispute gets its balance transaction (UK card
    pricing), and ``run_payout`` pays out whatever has become available.

    A failed webhook delivery is retried once after each of ``retry_delays``
    seconds, so the default (1, 2, 4, 8) gives up after 5 attempts in all.
    ``clock`` is injectable so tests can move time past ``expires_at`` (and
    past ``available_on`` for payouts).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 12111,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL_SECONDS,
        webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the emulator serves loopback only ({', '.join(sorted(LOOPBACK_HOSTS))}), not {host!r}")
        self.host = host
        self.port = port
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.retry_delays = tuple(retry_delays)
        self.sweep_interval = sweep_interval
        self.webhook_timeout = webhook_timeout
        self._clock = clock
        # One lock guards every store, including the idempotency results.
        self._lock = threading.RLock()
        self._records: dict[str, CheckoutRecord] = {}
        self._payment_intents: dict[str, dict[str, Any]] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._disputes: dict[str, dict[str, Any]] = {}
        self._payouts: dict[str, dict[str, Any]] = {}
        self._ledger = BalanceLedger()
        self._events: dict[str, dict[str, Any]] = {}
        self._api_log: list[tuple[str, str]] = []
        # Fault injection: how many upcoming /v1 requests to fail or slow down, and how.
        self._failures_remaining = 0
        self._failure_status = 500
        self._delays_remaining = 0
        self._delay_seconds = 0.0
        self.idempotency = IdempotencyStore(self._lock)
        self._server: _EmulatorHTTPServer | None = None
        self._service_threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The emulator's root URL, with the real port once started on port 0."""
        port = self._server.server_address[1] if self._server else self.port
        return f"http://{self.host}:{port}"

    def start(self) -> None:
        """Start serving in daemon threads; the socket is listening on return."""
        if self._server is not None:
            raise RuntimeError("The Stripe emulator is already running.")
        self._stopping.clear()
        # Constructing the server binds and listens, so clients can connect at once.
        self._server = server = _EmulatorHTTPServer((self.host, self.port), self)
        # A short poll interval keeps stop() quick; idle cost is negligible.
        self._start_service_thread(lambda: server.serve_forever(poll_interval=0.05), "stripe-emulator-http")
        self._start_service_thread(self._sweep_expired_sessions_periodically, "stripe-emulator-sweeper")
        LOGGER.info("Stripe emulator listening on %s (dashboard: %s/_emulator)", self.base_url, self.base_url)

    def stop(self) -> None:
        """Stop serving, abandon pending webhook retries and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for thread in self._service_threads:
            thread.join(timeout=5)
        self._service_threads.clear()
        LOGGER.info("Stripe emulator stopped")

    def __enter__(self) -> "StripeEmulator":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_service_thread(self, target: Callable[[], None], name: str) -> None:
        """Run target in a daemon thread that stop() waits for."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._service_threads.append(thread)

    def _now(self) -> int:
        """Current Unix time in whole seconds, from the injectable clock."""
        return int(self._clock())

    # -- buyer actions and test controls -----------------------------------

    def pay(self, session_id: str) -> None:
        """Complete the session as if the buyer clicked Pay on the hosted page."""
        self.complete_payment(session_id)

    def decline(self, session_id: str) -> None:
        """Simulate a declined card: nothing changes and no event is sent."""
        with self._lock:
            self._open_record_locked(session_id, "paid")

    def pay_async(self, session_id: str) -> None:
        """Start a bank transfer as if the buyer clicked "Pay by bank transfer" on the hosted page."""
        self.complete_async_payment(session_id)

    def settle_async(self, session_id: str, succeeded: bool) -> None:
        """Settle a bank transfer started by pay_async and deliver the outcome event before returning.

        Success creates the Charge and marks the session paid
        (``checkout.session.async_payment_succeeded``). Failure leaves the
        session unpaid and sends the PaymentIntent back to
        ``requires_payment_method`` (``checkout.session.async_payment_failed``).
        """
        self._deliver_now(self._settle_session(session_id, succeeded))

    def refund(self, payment_intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund a payment the way the Stripe dashboard does; return a copy of the Refund.

        ``amount`` defaults to everything not yet refunded. This shares its code
        with POST /v1/refunds, so it sends the same two events (``refund.created``
        then ``charge.refunded``), delivered before returning.
        """
        refund, events = self._create_refund(RefundRequest(payment_intent=payment_intent_id, amount=amount))
        self._deliver_all_now(events)
        return refund

    def dispute(self, payment_intent_id: str, amount: int | None = None, reason: str = "fraudulent") -> dict[str, Any]:
        """Open a dispute (chargeback) on a paid PaymentIntent's charge; return a copy of it.

        ``amount`` defaults to the whole charge. The charge is marked disputed and
        ``charge.dispute.created`` is delivered before returning.
        """
        dispute, event = self._open_dispute(payment_intent_id, amount, reason)
        self._deliver_now(event)
        return dispute

    def close_dispute(self, dispute_id: str, won: bool) -> dict[str, Any]:
        """Close an open dispute as won or lost, deliver ``charge.dispute.closed`` and return a copy."""
        dispute, event = self._close_dispute(dispute_id, won)
        self._deliver_now(event)
        return dispute

    def run_payout(self, now: int | None = None) -> dict[str, Any] | None:
        """Pay out every balance transaction available at now (default: the clock) and not yet paid out.

        The payout is for the sum of their nets, is ``paid`` at once and gets its
        own ``payout`` balance transaction; ``payout.paid`` is delivered before
        returning a copy. Returns None, doing nothing, when nothing is available
        or the sum is not positive. With several currencies only the oldest
        transaction's currency is paid out; call again for the others.
        """
        with self._lock:
            created = self._create_payout_locked(self._now() if now is None else now)
        if created is None:
            return None
        payout, event = created
        self._deliver_now(event)
        return payout

    def seed_paid_charges(self, items: Sequence[tuple[str, int, str, int]]) -> list[str]:
        """Store succeeded payments directly, for benchmarks; return their PaymentIntent ids in order.

        Each item is ``(order_reference, amount, currency, created_unix)`` and gets
        a succeeded PaymentIntent (metadata ``order_reference``), its Charge and the
        charge's balance transaction, all created at created_unix. No checkout
        session, no events and no HTTP: 100,000 rows take about a second.
        """
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
        with self._lock:
            self._payment_intents.update((intent["id"], intent) for intent in intents)
            self._charges.update((charge["id"], charge) for charge in charges)
            self._ledger.add(transactions)
        return intent_ids

    def fail_next_requests(self, count: int, status: int = 500) -> None:
        """Make the next count authenticated /v1 requests fail with status, doing nothing else.

        Each answers ``{"error": {"type": "api_error", ...}}`` with
        ``Stripe-Should-Retry: true``, so the SDK's ``max_network_retries``
        applies. Calling again replaces the previous setting; ``count=0`` cancels it.
        """
        if count < 0:
            raise ValueError("count must not be negative")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._lock:
            self._failures_remaining = count
            self._failure_status = status

    def delay_next_requests(self, count: int, seconds: float) -> None:
        """Make the next count authenticated /v1 requests wait seconds before being handled.

        Calling again replaces the previous setting; ``count=0`` cancels it.
        """
        if count < 0 or seconds < 0:
            raise ValueError("count and seconds must not be negative")
        with self._lock:
            self._delays_remaining = count
            self._delay_seconds = seconds

    def expire(self, session_id: str) -> None:
        """Expire an open session and deliver checkout.session.expired before returning."""
        _, event = self._expire_open_session(session_id)
        self._deliver_now(event)

    def redeliver(self, event_id: str) -> int:
        """Send a stored event to webhook_url once more; return its status (0 = no response)."""
        with self._lock:
            event = self._events.get(event_id)
        if event is None:
            raise resource_missing("event", event_id)
        if not self.webhook_url:
            raise ApiError(400, "No webhook_url is configured, so there is nowhere to deliver the event.")
        return self._send_event(event)

    def api_requests(self) -> list[tuple[str, str]]:
        """Every authenticated API request received, as (method, path), oldest first."""
        with self._lock:
            return list(self._api_log)

    def events(self) -> list[dict[str, Any]]:
        """Every event created so far, oldest first (copies, safe to mutate)."""
        with self._lock:
            return copy.deepcopy(list(self._events.values()))

    def checkout_view(self, session_id: str) -> CheckoutRecord:
        """A copy of one session and its line items, for rendering the hosted page."""
        with self._lock:
            return copy.deepcopy(self._record_locked(session_id))

    def dashboard_view(self) -> DashboardView:
        """Copies of everything the developer dashboard shows, newest first (payments and payouts capped)."""
        with self._lock:
            self.expire_overdue_sessions()
            intents = list(itertools.islice(reversed(self._payment_intents.values()), DASHBOARD_ROW_LIMIT))
            charge_ids = {intent["latest_charge"] for intent in intents}
            payouts = list(itertools.islice(reversed(self._payouts.values()), DASHBOARD_ROW_LIMIT))
            return DashboardView(
                sessions=[copy.deepcopy(record.session) for record in reversed(self._records.values())],
                payment_intents=copy.deepcopy(intents),
                charges={charge_id: copy.deepcopy(self._charges[charge_id]) for charge_id in charge_ids if charge_id},
                disputes=copy.deepcopy(list(reversed(self._disputes.values()))),
                events=copy.deepcopy(list(reversed(self._events.values()))[:DASHBOARD_EVENT_LIMIT]),
                payouts=copy.deepcopy(payouts),
                payout_sizes={payout["id"]: self._ledger.payout_size(payout["id"]) for payout in payouts},
                balances=self._balances_locked(),
            )

    def _balances_locked(self) -> dict[str, tuple[int, int]]:
        """Per currency, the (available, pending) nets not yet paid out."""
        now = self._now()
        balances: dict[str, tuple[int, int]] = {}
        for txn in self._ledger.awaiting_payout():
            available, pending = balances.get(txn["currency"], (0, 0))
            if txn["available_on"] <= now:
                available += txn["net"]
            else:
                pending += txn["net"]
            balances[txn["currency"]] = (available, pending)
        return balances

    def before_api_request(self, method: str, path: str) -> ApiError | None:
        """Apply any injected delay, then return the injected failure for this request, if any.

        The HTTP layer calls this for every authenticated /v1 request before it
        touches parameters or the idempotency store, so a failure has no side
        effects and a retry with the same Idempotency-Key runs for real.
        """
        with self._lock:
            delay = self._delay_seconds if self._delays_remaining > 0 else 0.0
            self._delays_remaining = max(self._delays_remaining - 1, 0)
        if delay:
            self._stopping.wait(delay)  # returns early if the emulator is stopping
        with self._lock:
            if self._failures_remaining <= 0:
                return None
            self._failures_remaining -= 1
            # Counted here because the request never reaches handle_api_request.
            self._api_log.append((method, path))
            return ApiError(self._failure_status, INJECTED_FAILURE_MESSAGE, error_type="api_error")

    # -- state changes (all under the lock) --------------------------------

    def _record_locked(self, session_id: str) -> CheckoutRecord:
        """Look a session up, expiring it first if its time has run out."""
        record = self._records.get(session_id)
        if record is None:
            raise resource_missing("checkout.session", session_id, param="session")
        self._expire_if_overdue_locked(record)
        return record

    def _open_record_locked(self, session_id: str, action: str) -> CheckoutRecord:
        """Look a session up and insist it can still be paid or expired."""
        record = self._record_locked(session_id)
        if record.session["status"] != "open":
            raise session_not_open(record.session["status"], action)
        return record

    def _expire_if_overdue_locked(self, record: CheckoutRecord) -> None:
        """Expire a session whose expires_at has passed and send the event."""
        session = record.session
        if session["status"] == "open" and self._now() >= session["expires_at"]:
            # Delivery happens on another thread, so holding the lock here is fine.
            self._deliver_in_background(self._expire_locked(record))

    def _expire_locked(self, record: CheckoutRecord) -> dict[str, Any]:
        """Mark a session expired and record checkout.session.expired."""
        # Stripe drops the hosted URL once a session can no longer be paid.
        record.session.update(status="expired", url=None)
        return self._record_event_locked("checkout.session.expired", record.session)

    def _expire_open_session(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Expire an open session; return a copy of it and the new event."""
        with self._lock:
            record = self._open_record_locked(session_id, "expired")
            event = self._expire_locked(record)
            return copy.deepcopy(record.session), event

    def _complete_session(self, session_id: str, *, settled: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """Complete a session, create its PaymentIntent and record checkout.session.completed.

        ``settled=False`` is a bank transfer: the session completes but stays
        unpaid until settle_async, exactly as Stripe reports delayed payments.
        """
        with self._lock:
            record = self._open_record_locked(session_id, "paid")
            payment_intent = self._create_payment_intent_locked(record, settled=settled)
            customer_email = record.session["customer_email"]
            record.session.update(
                status="complete",
                payment_status="paid" if settled else "unpaid",
                payment_intent=payment_intent["id"],
                customer_details={"email": customer_email} if customer_email else None,
                url=None,
            )
            event = self._record_event_locked("checkout.session.completed", record.session)
            return copy.deepcopy(record.session), event

    def _create_payment_intent_locked(self, record: CheckoutRecord, *, settled: bool = True) -> dict[str, Any]:
        """Store the PaymentIntent that paying a session creates: succeeded, or processing if not settled."""
        session = record.session
        payment_intent = {
            "id": random_id("pi_test_"),
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0,
            "created": self._now(),
            "currency": session["currency"],
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(record.payment_intent_metadata),
            "status": AWAITING_SETTLEMENT_STATUS,
        }
        self._payment_intents[payment_intent["id"]] = payment_intent
        if settled:
            # Card payments settle at once; both paths create the Charge the same way.
            self._settle_payment_intent_locked(payment_intent)
        return payment_intent

    def _settle_payment_intent_locked(self, payment_intent: dict[str, Any]) -> None:
        """Mark a PaymentIntent succeeded and store the Charge its latest_charge names."""
        payment_intent.update(
            status="succeeded",
            amount_received=payment_intent["amount"],
            latest_charge=random_id("ch_test_"),
        )
        charge = build_charge(payment_intent, now=self._now(), balance_transaction=random_id("txn_test_"))
        self._charges[charge["id"]] = charge
        self._ledger.add([charge_balance_transaction(charge)])

    def _settle_session(self, session_id: str, succeeded: bool) -> dict[str, Any]:
        """Settle a bank transfer either way and record the matching async_payment event."""
        with self._lock:
            record = self._record_locked(session_id)
            payment_intent = self._payment_intents.get(record.session["payment_intent"] or "")
            if payment_intent is None or not is_awaiting_settlement(record.session, payment_intent):
                message = f"Checkout Session {session_id} has no bank transfer waiting to settle."
                raise ApiError(400, message, code="payment_intent_unexpected_state")
            if succeeded:
                self._settle_payment_intent_locked(payment_intent)
                record.session["payment_status"] = "paid"
                return self._record_event_locked("checkout.session.async_payment_succeeded", record.session)
            # The money never arrived: Stripe asks for another payment method.
            payment_intent["status"] = "requires_payment_method"
            return self._record_event_locked("checkout.session.async_payment_failed", record.session)

    def _payment_intent_locked(self, payment_intent_id: str, param: str = "intent") -> dict[str, Any]:
        """Look a PaymentIntent up or raise Stripe's 404."""
        payment_intent = self._payment_intents.get(payment_intent_id)
        if payment_intent is None:
            raise resource_missing("payment_intent", payment_intent_id, param=param)
        return payment_intent

    def _charge_locked(self, charge_id: str, param: str = "id") -> dict[str, Any]:
        """Look a Charge up or raise Stripe's 404."""
        charge = self._charges.get(charge_id)
        if charge is None:
            raise resource_missing("charge", charge_id, param=param)
        return charge

    def _paid_charge_locked(self, payment_intent_id: str) -> dict[str, Any]:
        """Return the Charge of a succeeded PaymentIntent, refusing one that has not been paid."""
        payment_intent = self._payment_intent_locked(payment_intent_id, param="payment_intent")
        charge = self._charges.get(payment_intent["latest_charge"] or "")
        if charge is None:
            message = (
                f"PaymentIntent {payment_intent_id} has a status of {payment_intent['status']!r} "
                "and no successful charge yet."
            )
            raise ApiError(400, message, code="payment_intent_unexpected_state", param="payment_intent")
        return charge

    def _refund_target_locked(self, request: RefundRequest) -> dict[str, Any]:
        """Find the charge a refund request names by charge id, PaymentIntent id, or both."""
        if request.charge is None:
            return self._paid_charge_locked(str(request.payment_intent))
        charge = self._charge_locked(request.charge, param="charge")
        if request.payment_intent is not None and request.payment_intent != charge["payment_intent"]:
            message = f"Charge {request.charge} does not belong to PaymentIntent {request.payment_intent}."
            raise invalid_param("payment_intent", message)
        return charge

    def _create_refund(self, request: RefundRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Refund a charge; return a copy of the Refund and its two events, oldest first."""
        with self._lock:
            charge = self._refund_target_locked(request)
            amount = refund_amount(charge, request.amount)
            refund = build_refund(charge, amount, request, now=self._now())
            self._refunds[refund["id"]] = refund
            self._ledger.add([refund_balance_transaction(refund)])
            charge["amount_refunded"] += amount
            charge["refunded"] = unrefunded_amount(charge) == 0
            events = [
                self._record_event_locked("refund.created", refund),
                self._record_event_locked("charge.refunded", charge),
            ]
            return copy.deepcopy(refund), events

    def _open_dispute(
        self, payment_intent_id: str, amount: int | None, reason: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open a dispute on a paid charge and record charge.dispute.created."""
        with self._lock:
            charge = self._paid_charge_locked(payment_intent_id)
            # A card payment can be charged back only once.
            if charge["disputed"]:
                raise ApiError(400, f"Charge {charge['id']} has already been disputed.", code="charge_disputed")
            dispute = build_dispute(charge, dispute_amount(charge, amount), reason, now=self._now())
            self._disputes[dispute["id"]] = dispute
            self._add_dispute_transaction_locked(dispute, dispute_withdrawal_transaction(dispute, now=self._now()))
            charge["disputed"] = True
            event = self._record_event_locked("charge.dispute.created", dispute)
            return copy.deepcopy(dispute), event

    def _close_dispute(self, dispute_id: str, won: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark an open dispute won or lost and record charge.dispute.closed."""
        with self._lock:
            dispute = self._dispute_locked(dispute_id)
            if dispute["status"] in CLOSED_DISPUTE_STATUSES:
                message = f"Dispute {dispute_id} is already closed with a status of {dispute['status']!r}."
                raise ApiError(400, message, code="dispute_already_closed")
            dispute["status"] = "won" if won else "lost"
            if won:
                self._add_dispute_transaction_locked(dispute, dispute_reversal_transaction(dispute, now=self._now()))
            event = self._record_event_locked("charge.dispute.closed", dispute)
            return copy.deepcopy(dispute), event

    def _add_dispute_transaction_locked(self, dispute: dict[str, Any], txn: dict[str, Any]) -> None:
        """Store a dispute's withdrawal or reinstatement and list it on the dispute, as Stripe does."""
        self._ledger.add([txn])
        dispute["balance_transactions"].append(dict(txn))

    def _create_payout_locked(self, now: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Create the payout run_payout describes; return a copy and its payout.paid event, or None."""
        contents = self._ledger.available_for_payout(now)
        amount = sum(txn["net"] for txn in contents)
        if not contents or amount <= 0:
            return None
        payout = build_payout(amount, contents[0]["currency"], now=now)
        self._payouts[payout["id"]] = payout
        self._ledger.mark_paid_out(contents, payout["id"])
        self._ledger.add([payout_balance_transaction(payout)], awaiting_payout=False)
        event = self._record_event_locked("payout.paid", payout)
        return copy.deepcopy(payout), event

    def _dispute_locked(self, dispute_id: str) -> dict[str, Any]:
        """Look a Dispute up or raise Stripe's 404."""
        dispute = self._disputes.get(dispute_id)
        if dispute is None:
            raise resource_missing("dispute", dispute_id)
        return dispute

    def _record_event_locked(self, event_type: str, data_object: dict[str, Any]) -> dict[str, Any]:
        """Store an event holding a snapshot of data_object as it is right now."""
        event = {
            "id": random_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._now(),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": copy.deepcopy(data_object)},
        }
        self._events[event["id"]] = event
        return event

    def complete_payment(self, session_id: str) -> dict[str, Any]:
        """Pay a session, deliver the webhook, and return a copy of the paid session.

        Delivery is synchronous so the app has handled checkout.session.completed
        before the buyer lands on success_url.
        """
        session, event = self._complete_session(session_id)
        self._deliver_now(event)
        return session

    def complete_async_payment(self, session_id: str) -> dict[str, Any]:
        """Start a bank transfer: complete the session unpaid, deliver the webhook, return a copy.

        The PaymentIntent stays ``processing`` with no Charge until settle_async.
        """
        session, event = self._complete_session(session_id, settled=False)
        self._deliver_now(event)
        return session

    def _sweep_expired_sessions_periodically(self) -> None:
        """Expire overdue sessions even when nobody is looking at them."""
        while not self._stopping.wait(self.sweep_interval):
            try:
                self.expire_overdue_sessions()
            except Exception:  # the sweeper must survive a bad pass and try again
                LOGGER.exception("Sweeping expired checkout sessions failed")

    def expire_overdue_sessions(self) -> None:
        """Expire every open session whose expires_at has passed."""
        with self._lock:
            for record in list(self._records.values()):
                self._expire_if_overdue_locked(record)

    # -- webhook delivery (never under the lock: the app may call us back) --

    def _deliver_now(self, event: dict[str, Any]) -> None:
        """Deliver once, synchronously; on failure retry in the background."""
        if not self.webhook_url:
            return
        if not is_successful_delivery(self._send_event(event)):
            self._start_delivery_thread(self._retry_delivery, event)

    def _deliver_in_background(self, event: dict[str, Any]) -> None:
        """Deliver (with retries) without making the caller wait."""
        if self.webhook_url:
            self._start_delivery_thread(self._deliver_now, event)

    def _deliver_all_now(self, events: list[dict[str, Any]]) -> None:
        """Deliver events one after another, in order (failed ones are retried in the background)."""
        for event in events:
            self._deliver_now(event)

    def _deliver_all_in_background(self, events: list[dict[str, Any]]) -> None:
        """Deliver events in order on one background thread, so they arrive in the order created."""
        if self.webhook_url and events:
            thread = threading.Thread(
                target=self._deliver_all_now, args=(events,), name=f"webhook-{events[0]['id']}", daemon=True
            )
            thread.start()

    def _start_delivery_thread(self, target: Callable[[dict[str, Any]], None], event: dict[str, Any]) -> None:
        """Run one delivery job in a daemon thread."""
        thread = threading.Thread(target=target, args=(event,), name=f"webhook-{event['id']}", daemon=True)
        thread.start()

    def _retry_delivery(self, event: dict[str, Any]) -> None:
        """Retry a failed delivery with back-off until it succeeds or attempts run out."""
        for delay in self.retry_delays:
            if self._stopping.wait(delay) or not self.webhook_url:
                return  # the emulator stopped or webhooks were switched off
            if is_successful_delivery(self._send_event(event)):
                return
        LOGGER.warning("Gave up delivering %s after %d attempts", event["id"], len(self.retry_delays) + 1)

    def _send_event(self, event: dict[str, Any]) -> int:
        """POST one signed event to webhook_url and return the HTTP status."""
        url = self.webhook_url
        if not url:
            return 0
        payload = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_webhook_payload(payload, self.webhook_secret, self._now()),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) local-emulator",
        }
        status = post_webhook(url, payload, headers, self.webhook_timeout)
        LOGGER.info("Webhook %s %s -> %s", event["type"], event["id"], status or "no response")
        return status

    # -- REST API ----------------------------------------------------------

    def handle_api_request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Route an authenticated /v1 request and return the JSON response body."""
        with self._lock:
            self._api_log.append((method, path))
        for route_method, pattern, handler in _API_ROUTES:
            match = pattern.fullmatch(path)
            if route_method == method and match is not None:
                object_id = urllib.parse.unquote(match.group(1)) if pattern.groups else None
                return handler(self, object_id, params)
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}).")

    def _api_create_session(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/checkout/sessions."""
        record = build_checkout_record(params, now=self._now(), base_url=self.base_url)
        with self._lock:
            self._records[record.session["id"]] = record
            return self._expanded_session_locked(record, params)

    def _api_list_sessions(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions, newest first, filterable by status and payment_intent."""
        filters = {name: params[name] for name in ("status", "payment_intent") if params.get(name)}
        with self._lock:
            self.expire_overdue_sessions()
            sessions = [copy.deepcopy(record.session) for record in reversed(self._records.values())]
        matching = [session for session in sessions if all(session.get(k) == v for k, v in filters.items())]
        return paginate(matching, params, "/v1/checkout/sessions")

    def _api_retrieve_session(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions/:id."""
        with self._lock:
            return self._expanded_session_locked(self._record_locked(str(session_id)), params)

    def _api_list_line_items(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions/:id/line_items."""
        with self._lock:
            items = copy.deepcopy(self._record_locked(str(session_id)).line_items)
        return paginate(items, params, f"/v1/checkout/sessions/{session_id}/line_items")

    def _api_expire_session(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/checkout/sessions/:id/expire."""
        session, event = self._expire_open_session(str(session_id))
        # The caller here is the app itself; making it wait for its own webhook
        # would deadlock a single-threaded server, so deliver like Stripe: async.
        self._deliver_in_background(event)
        return session

    def _api_list_events(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events, newest first, filterable by type."""
        event_type = _optional_string(params, "type")
        with self._lock:
            events = [copy.deepcopy(event) for event in reversed(self._events.values())]
        matching = [event for event in events if event_type in (None, event["type"])]
        return paginate(matching, params, "/v1/events")

    def _api_retrieve_event(self, event_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events/:id."""
        with self._lock:
            event = self._events.get(str(event_id))
            if event is None:
                raise resource_missing("event", str(event_id))
            return copy.deepcopy(event)

    def _api_retrieve_payment_intent(self, intent_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payment_intents/:id, expanding latest_charge (and latest_charge.balance_transaction)."""
        with self._lock:
            return self._retrieved_locked(self._payment_intent_locked(str(intent_id)), params)

    def _api_retrieve_charge(self, charge_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/charges/:id, expanding balance_transaction or payment_intent when asked."""
        with self._lock:
            return self._retrieved_locked(self._charge_locked(str(charge_id)), params)

    def _api_list_charges(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/charges, newest first, filterable by payment_intent."""
        return self._list_objects(self._charges, params, ("payment_intent",), "/v1/charges")

    def _api_create_refund(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/refunds."""
        refund, events = self._create_refund(parse_refund_request(params))
        # The caller is usually the app itself, so (as for expire) it must not wait for its own webhooks.
        self._deliver_all_in_background(events)
        return refund

    def _api_retrieve_refund(self, refund_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds/:id."""
        with self._lock:
            refund = self._refunds.get(str(refund_id))
            if refund is None:
                raise resource_missing("refund", str(refund_id))
            return self._retrieved_locked(refund, params)

    def _api_list_refunds(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds, newest first, filterable by payment_intent and charge."""
        return self._list_objects(self._refunds, params, ("payment_intent", "charge"), "/v1/refunds")

    def _api_retrieve_dispute(self, dispute_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/disputes/:id."""
        with self._lock:
            return self._retrieved_locked(self._dispute_locked(str(dispute_id)), params)

    def _api_list_disputes(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/disputes, newest first, filterable by payment_intent and charge."""
        return self._list_objects(self._disputes, params, ("payment_intent", "charge"), "/v1/disputes")

    def _api_list_balance_transactions(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/balance_transactions, newest first, filterable and expandable like Stripe's.

        Filters: created (exact or gt/gte/lt/lte), type, source, currency and
        payout (the transactions that payout paid out). ``expand[]=data.source``
        and ``data.source.payment_intent`` swap ids for objects.
        """
        created = parse_range_filter(params, "created")
        limit = page_limit(params)
        cursors = {name: _optional_string(params, name) for name in ("starting_after", "ending_before")}
        tree = _expansion_tree(_expand_fields(params), "data.")
        with self._lock:
            keep = self._balance_transaction_filter_locked(params)
            page, has_more = self._ledger.page(self._ledger.span(created), keep, limit, **cursors)
            now = self._now()
            data = [self._expand_locked(render_balance_transaction(txn, now), tree, now) for txn in page]
        return list_object(data, "/v1/balance_transactions", has_more)

    def _balance_transaction_filter_locked(self, params: dict[str, Any]) -> _TransactionFilter | None:
        """The filter for a balance transaction listing's equality and payout parameters (None: keep all)."""
        equal = {name: value for name in ("type", "source", "currency") if (value := _optional_string(params, name))}
        payout_id = _optional_string(params, "payout")
        if payout_id is not None and payout_id not in self._payouts:
            raise resource_missing("payout", payout_id, param="payout")
        if not equal and payout_id is None:
            return None
        payout_of = self._ledger.payout_of

        def keep(txn: dict[str, Any]) -> bool:
            in_payout = payout_id is None or payout_of(txn["id"]) == payout_id
            return in_payout and all(txn[name] == value for name, value in equal.items())

        return keep

    def _api_retrieve_balance_transaction(self, txn_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/balance_transactions/:id, expanding source (and source.payment_intent) when asked."""
        with self._lock:
            txn = self._ledger.get(str(txn_id))
            if txn is None:
                raise resource_missing("balance_transaction", str(txn_id))
            return self._retrieved_locked(txn, params)

    def _api_list_payouts(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payouts, newest first, filterable by created, arrival_date and status."""
        ranges = {name: parse_range_filter(params, name) for name in ("created", "arrival_date")}
        status = _optional_string(params, "status")
        tree = _expansion_tree(_expand_fields(params), "data.")
        with self._lock:
            payouts = [
                payout
                for payout in reversed(self._payouts.values())
                if status in (None, payout["status"])
                and all(bounds is None or bounds.matches(payout[name]) for name, bounds in ranges.items())
            ]
            listing = paginate(payouts, params, "/v1/payouts")
            now = self._now()
            listing["data"] = [self._expand_locked(copy.deepcopy(payout), tree, now) for payout in listing["data"]]
        return listing

    def _api_retrieve_payout(self, payout_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payouts/:id, expanding balance_transaction when asked."""
        with self._lock:
            payout = self._payouts.get(str(payout_id))
            if payout is None:
                raise resource_missing("payout", str(payout_id))
            return self._retrieved_locked(payout, params)

    # -- expansion ----------------------------------------------------------

    def _retrieved_locked(self, stored: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """A response copy of one stored object, with the fields named by ``expand[]`` expanded."""
        now = self._now()
        return self._expand_locked(self._rendered_locked(stored, now), _expansion_tree(_expand_fields(params)), now)

    def _expand_locked(self, response: dict[str, Any], tree: dict[str, Any], now: int) -> dict[str, Any]:
        """Replace each id field named in tree with its object, expanded further by the subtree.

        response must already be a copy. Fields that are absent, empty or not an
        id the emulator knows (a payout has no payment_intent) stay as they are.
        """
        for name, subtree in tree.items():
            value = response.get(name)
            target = self._object_locked(value) if isinstance(value, str) else None
            if target is not None:
                response[name] = self._expand_locked(self._rendered_locked(target, now), subtree, now)
        return response

    def _object_locked(self, object_id: str) -> dict[str, Any] | None:
        """The stored object with this id, of whatever kind."""
        stores = (self._charges, self._payment_intents, self._refunds, self._disputes, self._payouts)
        return self._ledger.get(object_id) or next((store[object_id] for store in stores if object_id in store), None)

    def _rendered_locked(self, stored: dict[str, Any], now: int) -> dict[str, Any]:
        """A copy of a stored object as the API shows it now (balance transaction statuses are live)."""
        if stored["object"] == "balance_transaction":
            return render_balance_transaction(stored, now)
        rendered = copy.deepcopy(stored)
        if stored["object"] == "dispute":
            rendered["balance_transactions"] = [
                render_balance_transaction(self._ledger.get(txn["id"]) or txn, now)
                for txn in stored["balance_transactions"]
            ]
        return rendered

    def _list_objects(
        self, store: dict[str, dict[str, Any]], params: dict[str, Any], filter_names: Sequence[str], url: str
    ) -> dict[str, Any]:
        """List a store newest first, keeping objects whose fields equal the given filters."""
        filters = {name: value for name in filter_names if (value := _optional_string(params, name)) is not None}
        with self._lock:
            now = self._now()
            objects = [self._rendered_locked(item, now) for item in reversed(store.values())]
        matching = [item for item in objects if all(item.get(name) == value for name, value in filters.items())]
        return paginate(matching, params, url)

    def _expanded_session_locked(self, record: CheckoutRecord, params: dict[str, Any]) -> dict[str, Any]:
        """Copy a session, expanding line_items / payment_intent when asked."""
        session = copy.deepcopy(record.session)
        expand = _expand_fields(params)
        if "line_items" in expand:
            url = f"/v1/checkout/sessions/{session['id']}/line_items"
            session["line_items"] = list_object(copy.deepcopy(record.line_items), url)
        if "payment_intent" in expand and session["payment_intent"]:
            session["payment_intent"] = copy.deepcopy(self._payment_intents[session["payment_intent"]])
        return session


_ApiHandler = Callable[[StripeEmulator, "str | None", dict], dict]
_API_ROUTES: list[tuple[str, re.Pattern[str], _ApiHandler]] = [
    ("POST", re.compile(r"/v1/checkout/sessions"), StripeEmulator._api_create_session),
    ("GET", re.compile(r"/v1/checkout/sessions"), StripeEmulator._api_list_sessions),
    ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), StripeEmulator._api_retrieve_session),
    ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)/line_items"), StripeEmulator._api_list_line_items),
    ("POST", re.compile(r"/v1/checkout/sessions/([^/]+)/expire"), StripeEmulator._api_expire_session),
    ("GET", re.compile(r"/v1/events"), StripeEmulator._api_list_events),
    ("GET", re.compile(r"/v1/events/([^/]+)"), StripeEmulator._api_retrieve_event),
    ("GET", re.compile(r"/v1/payment_intents/([^/]+)"), StripeEmulator._api_retrieve_payment_intent),
    ("GET", re.compile(r"/v1/charges"), StripeEmulator._api_list_charges),
    ("GET", re.compile(r"/v1/charges/([^/]+)"), StripeEmulator._api_retrieve_charge),
    ("POST", re.compile(r"/v1/refunds"), StripeEmulator._api_create_refund),
    ("GET", re.compile(r"/v1/refunds"), StripeEmulator._api_list_refunds),
    ("GET", re.compile(r"/v1/refunds/([^/]+)"), StripeEmulator._api_retrieve_refund),
    ("GET", re.compile(r"/v1/disputes"), StripeEmulator._api_list_disputes),
    ("GET", re.compile(r"/v1/disputes/([^/]+)"), StripeEmulator._api_retrieve_dispute),
    ("GET", re.compile(r"/v1/balance_transactions"), StripeEmulator._api_list_balance_transactions),
    ("GET", re.compile(r"/v1/balance_transactions/([^/]+)"), StripeEmulator._api_retrieve_balance_transaction),
    ("GET", re.compile(r"/v1/payouts"), StripeEmulator._api_list_payouts),
    ("GET", re.compile(r"/v1/payouts/([^/]+)"), StripeEmulator._api_retrieve_payout),
]


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------


def _masked_key(key: str) -> str:
    """Show only the ends of a key, as Stripe's error message does."""
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)


def authenticated_api_key(authorization: str | None) -> str:
    """Return the test secret key from a Bearer header, or raise a 401."""
    if not authorization:
        raise ApiError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    # Only test keys: a live key pointed at the emulator is a configuration mistake.
    if scheme.lower() != "bearer" or not key.startswith("sk_test_"):
        raise ApiError(401, f"Invalid API Key provided: {_masked_key(key)}")
    return key


# ---------------------------------------------------------------------------
# Hosted checkout page
# ---------------------------------------------------------------------------

_CURRENCY_SYMBOLS = {"gbp": "£", "usd": "$", "eur": "€"}
_ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def format_money(amount: int, currency: str) -> str:
    """Format integer minor units for people: ``format_money(895, "gbp") == "£8.95"``."""
    currency = currency.lower()
    if currency in _ZERO_DECIMAL_CURRENCIES:
        major = f"{amount:,}"
    else:
        major = f"{amount // 100:,}.{amount % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{major}" if symbol else f"{major} {currency.upper()}"


_PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f8fa; color: #1a1a1a; }
main { max-width: 32rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; }
.emulator-note { background: #fff4ce; border: 2px solid #8a6d00; padding: .75rem; border-radius: 4px; }
.error { background: #fde7e9; border: 2px solid #a4262c; padding: .75rem; border-radius: 4px; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem 0; border-bottom: 1px solid #d0d7de; }
td.amount, th.amount { text-align: right; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1rem 0; }
button { font-size: 1.1rem; padding: .6rem 1.4rem; border-radius: 4px; border: 2px solid #0a2540; }
button.pay { background: #0a2540; color: #fff; }
button.decline, button.pay-later { background: #fff; color: #0a2540; }
main.wide { max-width: 80rem; }
main.wide th, main.wide td { padding-right: .75rem; vertical-align: top; }
main.wide td form { display: inline-block; margin: 0 .4rem .4rem 0; }
main.wide td button { font-size: .9rem; padding: .3rem .7rem; }
main.wide caption { text-align: left; font-size: 1.25rem; font-weight: bold; padding: .5rem 0; }
.notice { background: #dafbe1; border: 2px solid #1a7f37; padding: .75rem; border-radius: 4px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
button:focus-visible, a:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
"""

_EMULATOR_NOTE = (
    '<p class="emulator-note" role="note"><strong>Local test emulator.</strong> '
    "This is not real Stripe: no card is charged and no money moves.</p>"
)


def _escape(text: Any) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def render_html_document(title: str, body: str, *, wide: bool = False) -> str:
    """Wrap body in a complete, accessible HTML page (``wide`` for the dashboard's tables)."""
    main_tag = '<main class="wide">' if wide else "<main>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n{main_tag}\n{body}\n</main>\n</body>\n</html>\n"
    )


def _render_line_items(line_items: list[dict[str, Any]], total: str) -> str:
    """Render the order summary table, ending with the total."""
    rows = "".join(
        f"<tr><td>{_escape(item['description'])}</td><td>{item['quantity']}</td>"
        f'<td class="amount">{_escape(format_money(item["amount_total"], item["currency"]))}</td></tr>\n'
        for item in line_items
    )
    return (
        "<table>\n<caption>Order summary</caption>\n"
        '<thead><tr><th scope="col">Item</th><th scope="col">Qty</th>'
        '<th scope="col" class="amount">Amount</th></tr></thead>\n'
        f"<tbody>\n{rows}</tbody>\n"
        '<tfoot><tr><th scope="row" colspan="2">Total</th>'
        f'<td class="amount"><strong>{_escape(total)}</strong></td></tr></tfoot>\n'
        "</table>"
    )


def _checkout_path(session_id: str) -> str:
    """The hosted checkout page's path for a session."""
    return f"/c/pay/{urllib.parse.quote(session_id)}"


def _render_payment_actions(session: dict[str, Any], error_message: str | None) -> str:
    """Render the decline alert (if any), the Pay / Decline / bank transfer forms and the cancel link."""
    base = _checkout_path(session["id"])
    parts = [f'<p class="error" role="alert">{_escape(error_message)}</p>'] if error_message else []
    parts.append(
        '<div class="actions">'
        f'<form method="post" action="{base}/pay">'
        '<button type="submit" class="pay">Pay</button></form>'
        f'<form method="post" action="{base}/decline">'
        '<button type="submit" class="decline">Decline</button></form>'
        f'<form method="post" action="{base}/pay_async">'
        '<button type="submit" class="pay-later">Pay by bank transfer (confirms later)</button></form>'
        "</div>"
    )
    if session.get("cancel_url"):
        parts.append(f'<p><a href="{_escape(session["cancel_url"])}">Cancel and go back</a></p>')
    return "\n".join(parts)


def _render_closed_session(session: dict[str, Any]) -> str:
    """Explain why a completed or expired session can no longer be paid."""
    if session["status"] == "complete":
        continue_link = f'<a href="{_escape(success_redirect_url(session))}">Continue</a>'
        if session["payment_status"] != "paid":
            return (
                '<p role="status">Your bank transfer has been started and will be confirmed later. '
                f"Nothing more to do here. {continue_link}</p>"
            )
        return f'<p role="status">This payment is complete. Nothing more to do here. {continue_link}</p>'
    back_link = ""
    if session.get("cancel_url"):
        back_link = f' <a href="{_escape(session["cancel_url"])}">Go back</a>'
    return f'<p role="status">This checkout session has expired, so it can no longer be paid.{back_link}</p>'


def render_checkout_page(record: CheckoutRecord, error_message: str | None = None) -> str:
    """Render the hosted checkout page for one session."""
    session = record.session
    total = format_money(session["amount_total"], session["currency"])
    if session["status"] == "open":
        state = _render_payment_actions(session, error_message)
    else:
        state = _render_closed_session(session)
    heading = f"<h1>Pay {_escape(total)}</h1>"
    body = "\n".join([_EMULATOR_NOTE, heading, _render_line_items(record.line_items, total), state])
    return render_html_document(f"Checkout: {total} (local Stripe emulator)", body)


def render_not_found_page() -> str:
    """Render the page for an unknown checkout session."""
    body = f"{_EMULATOR_NOTE}\n<h1>Checkout session not found</h1>\n<p>Check the link and try again.</p>"
    return render_html_document("Checkout session not found (local Stripe emulator)", body)


# ---------------------------------------------------------------------------
# Developer dashboard
# ---------------------------------------------------------------------------

_DASHBOARD_NOTICES = {
    "settled": "The bank transfer was settled.",
    "expired": "The checkout session was expired.",
    "refunded": "The refund was created.",
    "disputed": "The dispute was opened.",
    "closed": "The dispute was closed.",
    "redelivered": "The event was sent to the webhook URL again.",
    "paid_out": "The payout was created and paid.",
}


def dashboard_notice(query: dict[str, list[str]]) -> str | None:
    """Turn the ``?done=...`` of a dashboard redirect into a fixed message.

    Only known codes and a numeric status are used, so a crafted link cannot
    put arbitrary words on the page.
    """
    notice = _DASHBOARD_NOTICES.get((query.get("done") or [""])[0])
    webhook_status = (query.get("webhook_status") or [""])[0]
    if notice and webhook_status.isdigit():
        answer = f"answered {webhook_status}" if webhook_status != "0" else "did not respond"
        notice = f"{notice} The webhook endpoint {answer}."
    return notice


def _control_path(kind: str, object_id: str, action: str) -> str:
    """The /_emulator URL that performs action on one object."""
    return f"/_emulator/{kind}/{urllib.parse.quote(object_id, safe='')}/{action}"


def _action_form(action: str, label: str, target_id: str, fields: str = "") -> str:
    """A small POST form that returns to the dashboard.

    The object id is repeated in visually hidden text so that the many
    same-named buttons are told apart by screen readers.
    """
    return (
        f'<form method="post" action="{_escape(action)}">'
        '<input type="hidden" name="view" value="dashboard">'
        f"{fields}"
        f'<button type="submit">{_escape(label)}<span class="visually-hidden"> {_escape(target_id)}</span></button>'
        "</form>"
    )


def _render_table(caption: str, headings: Sequence[str], rows: list[list[str]], empty: str) -> str:
    """Render a captioned table; cells are HTML that the caller has already escaped."""
    head = "".join(f'<th scope="col">{_escape(heading)}</th>' for heading in headings)
    if rows:
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    else:
        body = f'<tr><td colspan="{len(headings)}">{_escape(empty)}</td></tr>\n'
    return (
        f"<table>\n<caption>{_escape(caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
    )


def _money_cell(amount: int, currency: str) -> str:
    """An escaped amount for people, with the exact pence alongside."""
    return f"{_escape(format_money(amount, currency))} ({amount}p)"


def _code(text: Any) -> str:
    """An escaped identifier in a code element."""
    return f"<code>{_escape(text)}</code>"


def _session_actions(session: dict[str, Any], payment_intent: dict[str, Any] | None) -> str:
    """Forms for what can still happen to a session: expire it, or settle its bank transfer."""
    session_id = session["id"]
    if session["status"] == "open":
        checkout_link = (
            f'<a href="{_escape(_checkout_path(session_id))}">Open checkout page'
            f'<span class="visually-hidden"> {_escape(session_id)}</span></a> '
        )
        return checkout_link + _action_form(_control_path("sessions", session_id, "expire"), "Expire", session_id)
    if is_awaiting_settlement(session, payment_intent):
        settle = _control_path("sessions", session_id, "settle")
        return "".join(
            _action_form(settle, label, session_id, f'<input type="hidden" name="outcome" value="{outcome}">')
            for outcome, label in (("succeeded", "Settle: money arrived"), ("failed", "Settle: transfer failed"))
        )
    return "None"


def _render_sessions(view: DashboardView) -> str:
    """The Checkout Sessions table."""
    payment_intents = {intent["id"]: intent for intent in view.payment_intents}
    rows = [
        [
            _code(session["id"]),
            _money_cell(session["amount_total"], session["currency"]),
            _escape(session["status"]),
            _escape(session["payment_status"]),
            _session_actions(session, payment_intents.get(session["payment_intent"] or "")),
        ]
        for session in view.sessions
    ]
    headings = ("Session", "Amount", "Status", "Payment status", "Actions")
    return _render_table("Checkout Sessions", headings, rows, "No checkout sessions yet.")


def _refund_form(payment_intent_id: str, charge: dict[str, Any]) -> str:
    """A refund form whose optional amount defaults to everything still unrefunded."""
    field_id = f"refund-amount-{payment_intent_id}"
    remaining = unrefunded_amount(charge)
    amount_field = (
        f'<label for="{_escape(field_id)}">Amount in pence (blank: all {remaining}p)</label> '
        f'<input id="{_escape(field_id)}" name="amount" type="number" min="1" max="{remaining}" step="1" '
        'inputmode="numeric"> '
    )
    return _action_form(
        _control_path("payment_intents", payment_intent_id, "refund"), "Refund", payment_intent_id, amount_field
    )


def _dispute_form(payment_intent_id: str) -> str:
    """A form to open a dispute for the whole charge, with a choice of reason."""
    field_id = f"dispute-reason-{payment_intent_id}"
    options = "".join(
        f'<option value="{reason}"{" selected" if reason == "fraudulent" else ""}>{reason}</option>'
        for reason in DISPUTE_REASONS
    )
    reason_field = (
        f'<label for="{_escape(field_id)}">Reason</label> '
        f'<select id="{_escape(field_id)}" name="reason">{options}</select> '
    )
    action = _control_path("payment_intents", payment_intent_id, "dispute")
    return _action_form(action, "Open dispute", payment_intent_id, reason_field)


def _render_payment_intents(view: DashboardView) -> str:
    """The PaymentIntents table, with each one's charge, refunds and dispute state."""
    rows = []
    for intent in view.payment_intents:
        charge = view.charges.get(intent["latest_charge"] or "")
        actions = []
        if charge is not None and unrefunded_amount(charge) > 0:
            actions.append(_refund_form(intent["id"], charge))
        if charge is not None and not charge["disputed"]:
            actions.append(_dispute_form(intent["id"]))
        rows.append(
            [
                _code(intent["id"]),
                _money_cell(intent["amount"], intent["currency"]),
                _escape(intent["status"]),
                _code(charge["id"]) if charge else "None",
                _money_cell(charge["amount_refunded"], charge["currency"]) if charge else "None",
                "Yes" if charge and charge["disputed"] else "No",
                "".join(actions) or "None",
            ]
        )
    headings = ("PaymentIntent", "Amount", "Status", "Charge", "Refunded", "Disputed", "Actions")
    return _render_table("Payment intents", headings, rows, "No payments yet.")


def _render_disputes(view: DashboardView) -> str:
    """The Disputes table, with forms to close open ones."""
    rows = []
    for dispute in view.disputes:
        actions = "None"
        if dispute["status"] not in CLOSED_DISPUTE_STATUSES:
            close = _control_path("disputes", dispute["id"], "close")
            actions = "".join(
                _action_form(close, label, dispute["id"], f'<input type="hidden" name="outcome" value="{outcome}">')
                for outcome, label in (("won", "Close as won"), ("lost", "Close as lost"))
            )
        rows.append(
            [
                _code(dispute["id"]),
                _code(dispute["payment_intent"]),
                _money_cell(dispute["amount"], dispute["currency"]),
                _escape(dispute["reason"]),
                _escape(dispute["status"]),
                actions,
            ]
        )
    headings = ("Dispute", "PaymentIntent", "Amount", "Reason", "Status", "Actions")
    return _render_table("Disputes", headings, rows, "No disputes yet.")


def _render_balances(view: DashboardView) -> str:
    """What is waiting to be paid out, per currency, and the "Run a payout now" button."""
    lines = "".join(
        f"<li>{_money_cell(available, currency)} available, {_money_cell(pending, currency)} pending</li>"
        for currency, (available, pending) in sorted(view.balances.items())
    )
    balance = f"<ul>{lines}</ul>" if lines else "<p>Nothing is waiting to be paid out.</p>"
    button = (
        '<form method="post" action="/_emulator/payouts">'
        '<input type="hidden" name="view" value="dashboard">'
        '<button type="submit">Run a payout now</button></form>'
    )
    return f"<h2>Balance not yet paid out</h2>\n{balance}\n{button}"


def _render_payouts(view: DashboardView) -> str:
    """The newest payouts and how many balance transactions each paid out."""
    rows = [
        [
            _code(payout["id"]),
            _money_cell(payout["amount"], payout["currency"]),
            _escape(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(payout["arrival_date"]))),
            _escape(payout["status"]),
            str(view.payout_sizes.get(payout["id"], 0)),
        ]
        for payout in view.payouts
    ]
    headings = ("Payout", "Amount", "Arrival date", "Status", "Transactions")
    return _render_table(f"Payouts (newest {DASHBOARD_ROW_LIMIT})", headings, rows, "No payouts yet.")


def _render_events(view: DashboardView, can_redeliver: bool) -> str:
    """The newest events, each with a Redeliver form when a webhook URL is set."""
    rows = [
        [
            _code(event["id"]),
            _code(event["type"]),
            _escape(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event["created"]))),
            _action_form(_control_path("events", event["id"], "redeliver"), "Redeliver", event["id"])
            if can_redeliver
            else "None (no webhook URL)",
        ]
        for event in view.events
    ]
    caption = f"Events (newest {DASHBOARD_EVENT_LIMIT})"
    return _render_table(caption, ("Event", "Type", "Created", "Actions"), rows, "No events yet.")


def render_dashboard(
    view: DashboardView,
    *,
    webhook_url: str | None,
    notice: str | None = None,
    error_message: str | None = None,
) -> str:
    """Render the developer dashboard: payments, disputes, balance, payouts and events, with their controls."""
    parts = ["<h1>Local Stripe emulator</h1>", _EMULATOR_NOTE]
    if notice:
        parts.append(f'<p class="notice" role="status">{_escape(notice)}</p>')
    if error_message:
        parts.append(f'<p class="error" role="alert">{_escape(error_message)}</p>')
    target = _code(webhook_url) if webhook_url else "nowhere (no webhook URL is set)"
    parts.append(f'<p>Webhooks go to {target}. <a href="/_emulator">Refresh</a></p>')
    parts.extend(
        [
            _render_sessions(view),
            _render_payment_intents(view),
            _render_disputes(view),
            _render_balances(view),
            _render_payouts(view),
            _render_events(view, bool(webhook_url)),
        ]
    )
    return render_html_document("Dashboard (local Stripe emulator)", "\n".join(parts), wide=True)


# ---------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------

_HOSTED_PAGE_PATTERN = re.compile(r"/c/pay/([^/]+)(?:/(pay|pay_async|decline))?")
_DASHBOARD_PATHS = ("/_emulator", "/_emulator/")


def _json_bytes(body: dict[str, Any]) -> bytes:
    """Serialise a response body the way Stripe formats it."""
    return json.dumps(body, indent=2).encode()


class _EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows which emulator it serves."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: StripeEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _EmulatorRequestHandler)


class _EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into emulator calls; never lets a traceback escape."""

    server: _EmulatorHTTPServer
    server_version = "StripeEmulator/1.0"

    def do_GET(self) -> None:
        """Handle GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Handle POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Handle DELETE (no route uses it, so this answers with Stripe's 404)."""
        self._dispatch("DELETE")

    @property
    def _emulator(self) -> StripeEmulator:
        return self.server.emulator

    @property
    def _path(self) -> str:
        """The request path without its query string."""
        # http.server may report a malformed request before it has parsed a path.
        return urllib.parse.urlsplit(getattr(self, "path", "") or "").path

    def _dispatch(self, method: str) -> None:
        """Send the request to the API, the hosted page or the emulator controls."""
        try:
            body = self._read_body()
            if self._path.startswith("/v1/"):
                self._handle_api(method, body)
            elif self._path.startswith("/c/pay/"):
                self._handle_hosted_page(method)
            elif self._path.startswith("/_emulator/") or self._path == "/_emulator":
                self._handle_emulator_control(method, body)
            else:
                raise ApiError(404, f"Unrecognized request URL ({method}: {self._path}).")
        except ApiError as error:
            self._send_json(error.status, error.to_body())
        except Exception:  # answer in Stripe's shape rather than with a traceback
            LOGGER.exception("Unexpected error handling %s %s", method, self._path)
            message = "An unexpected error occurred in the local Stripe emulator."
            self._send_json(500, ApiError(500, message, error_type="api_error").to_body())

    def _read_body(self) -> bytes:
        """Read exactly Content-Length bytes of request body."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header.") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise ApiError(400, f"Request bodies must be between 0 and {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(length)

    # -- /v1 ---------------------------------------------------------------

    def _handle_api(self, method: str, body: bytes) -> None:
        """Authenticate, decode parameters and answer an API call."""
        api_key = authenticated_api_key(self.headers.get("Authorization"))
        # Injected failures come before anything else, so they change nothing (not even idempotency keys).
        injected = self._emulator.before_api_request(method, self._path)
        if injected is not None:
            # Like a real 5xx, ask the SDK to retry, so max_network_retries is what gets tested.
            headers = {"Stripe-Should-Retry": "true"}
            self._send_bytes(injected.status, _json_bytes(injected.to_body()), "application/json", headers)
            return
        raw_params = body if method == "POST" else urllib.parse.urlsplit(self.path).query.encode()
        params = _decoded_params(raw_params)
        idempotency_key = self.headers.get("Idempotency-Key")
        if method != "POST" or not idempotency_key:
            status, response = self._call_api(method, params)
            self._send_bytes(status, response, "application/json")
            return
        self._handle_idempotent_api(method, params, body, (api_key, idempotency_key))

    def _handle_idempotent_api(self, method: str, params: dict[str, Any], body: bytes, scope: tuple[str, str]) -> None:
        """Replay a stored response for a repeated key, or run and remember the call."""
        store = self._emulator.idempotency
        replay = store.begin(scope, request_fingerprint(method, self._path, body))
        if replay is not None:
            self._send_bytes(replay[0], replay[1], "application/json", {"Idempotent-Replayed": "true"})
            return
        status, response = 500, b""
        try:
            status, response = self._call_api(method, params)
        finally:
            store.finish(scope, status, response)
        self._send_bytes(status, response, "application/json", {"Idempotency-Key": scope[1]})

    def _call_api(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        """Run the API call and serialise its result or its Stripe error."""
        try:
            return 200, _json_bytes(self._emulator.handle_api_request(method, self._path, params))
        except ApiError as error:
            return error.status, _json_bytes(error.to_body())

    # -- hosted checkout page ------------------------------------------------

    def _handle_hosted_page(self, method: str) -> None:
        """Serve the checkout page and its Pay / Decline form posts."""
        match = _HOSTED_PAGE_PATTERN.fullmatch(self._path)
        if match is None:
            self._send_html(404, render_not_found_page())
            return
        session_id, action = urllib.parse.unquote(match.group(1)), match.group(2)
        if method == "GET" and action is None:
            self._show_checkout(session_id, 200)
        elif method == "POST" and action == "pay":
            self._pay_from_page(session_id)
        elif method == "POST" and action == "pay_async":
            self._pay_async_from_page(session_id)
        elif method == "POST" and action == "decline":
            self._decline_from_page(session_id)
        else:
            self._send_html(404, render_not_found_page())

    def _show_checkout(self, session_id: str, status: int, error_message: str | None = None) -> None:
        """Render the page for a session, or the not-found page."""
        try:
            record = self._emulator.checkout_view(session_id)
        except ApiError:
            self._send_html(404, render_not_found_page())
            return
        self._send_html(status, render_checkout_page(record, error_message))

    def _pay_from_page(self, session_id: str) -> None:
        """Pay, let the webhook land, then send the buyer to success_url."""
        try:
            session = self._emulator.complete_payment(session_id)
        except ApiError:
            # Unknown, already paid or expired: the page explains which.
            self._show_checkout(session_id, 409)
            return
        self._send_bytes(303, b"", "text/plain", {"Location": success_redirect_url(session)})

    def _pay_async_from_page(self, session_id: str) -> None:
        """Start a bank transfer, let checkout.session.completed land, then go to success_url."""
        try:
            session = self._emulator.complete_async_payment(session_id)
        except ApiError:
            self._show_checkout(session_id, 409)
            return
        self._send_bytes(303, b"", "text/plain", {"Location": success_redirect_url(session)})

    def _decline_from_page(self, session_id: str) -> None:
        """Keep the buyer on the page with Stripe's decline message, as Checkout does."""
        try:
            self._emulator.decline(session_id)
        except ApiError:
            self._show_checkout(session_id, 409)
            return
        self._show_checkout(session_id, 402, DECLINE_MESSAGE)

    # -- /_emulator controls -------------------------------------------------

    def _handle_emulator_control(self, method: str, body: bytes) -> None:
        """Serve the dashboard, the event list and the POST controls."""
        if method == "GET" and self._path in _DASHBOARD_PATHS:
            self._show_dashboard(200)
            return
        if method == "GET" and self._path == "/_emulator/events":
            self._send_json(200, list_object(self._emulator.events(), "/_emulator/events"))
            return
        for pattern, action in _CONTROL_ROUTES:
            match = pattern.fullmatch(self._path)
            if method == "POST" and match is not None:
                self._run_control(action, urllib.parse.unquote(match.group(1)), body)
                return
        raise ApiError(404, f"Unrecognized request URL ({method}: {self._path}).")

    def _run_control(self, action: _ControlAction, object_id: str, body: bytes) -> None:
        """Run a control; answer JSON, or (for the dashboard's forms) redirect back to it."""
        self._refuse_cross_origin()
        query = urllib.parse.urlsplit(self.path).query.encode()
        # Body fields win over the query string, so both curl styles work.
        params = {**_decoded_params(query), **_decoded_params(body)}
        from_dashboard = params.get("view") == "dashboard"
        try:
            result, done = action(self._emulator, object_id, params)
        except ApiError as error:
            if not from_dashboard:
                raise
            self._show_dashboard(error.status, error.message)
            return
        if from_dashboard:
            # Post/Redirect/Get, so reloading the page does not refund twice.
            location = "/_emulator?" + urllib.parse.urlencode(done)
            self._send_bytes(303, b"", "text/plain", {"Location": location})
        else:
            self._send_json(200, result)

    def _refuse_cross_origin(self) -> None:
        """Refuse control POSTs that a browser sent from another site's page."""
        origin = self.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != self.headers.get("Host"):
            raise ApiError(403, "Cross-origin requests to the emulator controls are refused.")

    def _show_dashboard(self, status: int, error_message: str | None = None) -> None:
        """Render the dashboard, with the notice from a redirect or an error from a failed form."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        page = render_dashboard(
            self._emulator.dashboard_view(),
            webhook_url=self._emulator.webhook_url,
            notice=None if error_message else dashboard_notice(query),
            error_message=error_message,
        )
        self._send_html(status, page)

    # -- responses -----------------------------------------------------------

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        """Send a JSON response."""
        self._send_bytes(status, _json_bytes(body), "application/json")

    def _send_html(self, status: int, page: str) -> None:
        """Send an HTML page."""
        self._send_bytes(status, page.encode(), "text/html; charset=utf-8")

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Send a complete response with a Stripe-style Request-Id."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", random_id("req_", 14))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, etc.) in Stripe's JSON shape."""
        self.close_connection = True
        self._send_json(code, ApiError(code, message or "Malformed HTTP request.").to_body())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path and status only: query strings and bodies may hold emails."""
        LOGGER.info("%s %s -> %s", self.command, self._path, int(code) if str(code).isdigit() else code)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep http.server's own messages, but without arguments that may echo input."""
        LOGGER.debug("http.server: %s", format)


def _decoded_params(raw: bytes) -> dict[str, Any]:
    """Decode a form body or query string, turning bad input into a Stripe 400."""
    try:
        return decode_stripe_form(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "Request parameters must be UTF-8 encoded.") from None
    except MalformedFormError as error:
        raise ApiError(400, str(error)) from None


# ---------------------------------------------------------------------------
# /_emulator controls: each returns (JSON body, dashboard redirect query)
# ---------------------------------------------------------------------------

_ControlResult = tuple[dict[str, Any], dict[str, str]]
_ControlAction = Callable[[StripeEmulator, str, dict[str, Any]], _ControlResult]


def _required_choice(params: dict[str, Any], key: str, allowed: Sequence[str]) -> str:
    """Return a parameter that must be present and one of allowed."""
    value = _choice(params, key, allowed)
    if value is None:
        raise missing_param(key)
    return value


def _control_redeliver(emulator: StripeEmulator, event_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/events/:id/redeliver."""
    status = emulator.redeliver(event_id)
    return {"event_id": event_id, "webhook_status": status}, {"done": "redelivered", "webhook_status": str(status)}


def _control_settle(emulator: StripeEmulator, session_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/sessions/:id/settle with outcome=succeeded|failed."""
    outcome = _required_choice(params, "outcome", ("succeeded", "failed"))
    emulator.settle_async(session_id, outcome == "succeeded")
    return emulator.checkout_view(session_id).session, {"done": "settled"}


def _control_expire(emulator: StripeEmulator, session_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/sessions/:id/expire."""
    emulator.expire(session_id)
    return emulator.checkout_view(session_id).session, {"done": "expired"}


def _control_refund(emulator: StripeEmulator, payment_intent_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/payment_intents/:id/refund with an optional amount."""
    return emulator.refund(payment_intent_id, _optional_amount(params)), {"done": "refunded"}


def _control_dispute(emulator: StripeEmulator, payment_intent_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/payment_intents/:id/dispute with optional amount and reason."""
    reason = _choice(params, "reason", DISPUTE_REASONS) or "fraudulent"
    return emulator.dispute(payment_intent_id, _optional_amount(params), reason), {"done": "disputed"}


def _control_close_dispute(emulator: StripeEmulator, dispute_id: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/disputes/:id/close with outcome=won|lost."""
    outcome = _required_choice(params, "outcome", ("won", "lost"))
    return emulator.close_dispute(dispute_id, outcome == "won"), {"done": "closed"}


def _control_run_payout(emulator: StripeEmulator, _: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/payouts, optionally with now (Unix seconds) to pay out funds available later."""
    now = None if params.get("now") in (None, "") else _integer(params["now"], "now", minimum=0)
    payout = emulator.run_payout(now)
    if payout is None:
        raise ApiError(400, "There is no available balance to pay out yet.", code="balance_insufficient")
    return payout, {"done": "paid_out"}


def _control_fail_next(emulator: StripeEmulator, _: str, params: dict[str, Any]) -> _ControlResult:
    """POST /_emulator/failures with count (0 cancels) and an optional status (500 unless given):
    the next count API requests fail, so a process outside this one can rehearse an outage."""
    count = _integer(params.get("count"), "count", minimum=0)
    status = 500 if params.get("status") in (None, "") else _integer(params["status"], "status", minimum=400)
    if status > 599:
        raise ApiError(
            400, "status must be an HTTP error status (400-599).", code="parameter_invalid_integer", param="status"
        )
    emulator.fail_next_requests(count, status)
    return {"object": "emulator.failures", "count": count, "status": status}, {"done": "failures_set"}


_CONTROL_ROUTES: list[tuple[re.Pattern[str], _ControlAction]] = [
    (re.compile(r"/_emulator/events/([^/]+)/redeliver"), _control_redeliver),
    (re.compile(r"/_emulator/sessions/([^/]+)/settle"), _control_settle),
    (re.compile(r"/_emulator/sessions/([^/]+)/expire"), _control_expire),
    (re.compile(r"/_emulator/payment_intents/([^/]+)/refund"), _control_refund),
    (re.compile(r"/_emulator/payment_intents/([^/]+)/dispute"), _control_dispute),
    (re.compile(r"/_emulator/disputes/([^/]+)/close"), _control_close_dispute),
    # The empty group stands in for the object id the other controls take.
    (re.compile(r"/_emulator/payouts()"), _control_run_payout),
    (re.compile(r"/_emulator/failures()"), _control_fail_next),
]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _parse_arguments(argv: Iterable[str] | None) -> argparse.Namespace:
    """Parse the command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.stripe_emulator",
        description="Run a local Stripe Checkout emulator for development.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        choices=sorted(LOOPBACK_HOSTS),
        help="loopback interface to bind (default 127.0.0.1)",
    )
    parser.add_argument("--port", type=int, default=12111, help="port to listen on (0 picks a free one)")
    parser.add_argument("--webhook-url", default=None, help="where to POST signed webhook events")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, help="signing secret (whsec_...)")
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> None:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = StripeEmulator(arguments.host, arguments.port, arguments.webhook_url, arguments.webhook_secret)
    # `docker stop` and process managers send SIGTERM; shut down as cleanly as for Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator.start()
    webhook_target = arguments.webhook_url or "none"
    print(f"Stripe emulator running at {emulator.base_url} (webhooks -> {webhook_target})", flush=True)
    print(f"Dashboard: {emulator.base_url}/_emulator", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
