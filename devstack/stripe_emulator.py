"""A local Stripe emulator that the official ``stripe`` Python SDK can talk to.

It speaks the slice of the Stripe REST API that tracekit uses (Checkout
Sessions, Events and PaymentIntents), serves a hosted checkout page with Pay
and Decline buttons, and delivers webhooks signed exactly the way Stripe signs
them, so the real webhook verification code runs unchanged against it.

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
import copy
import hashlib
import hmac
import html
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
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
DECLINE_MESSAGE = "Your card was declined. Try again or use a different card."
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


def paginate(newest_first: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Apply Stripe's ``limit`` / ``starting_after`` cursor pagination."""
    limit = DEFAULT_LIST_LIMIT
    if params.get("limit") not in (None, ""):
        limit = _integer(params["limit"], "limit", minimum=1)
    if limit > MAX_LIST_LIMIT:
        raise invalid_param("limit", f"This value must be less than or equal to {MAX_LIST_LIMIT}.")
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
    unknown session, 400 for one that is no longer open).

    A failed webhook delivery is retried once after each of ``retry_delays``
    seconds, so the default (1, 2, 4, 8) gives up after 5 attempts in all.
    ``clock`` is injectable so tests can move time past ``expires_at``.
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
        self._events: dict[str, dict[str, Any]] = {}
        self._api_log: list[tuple[str, str]] = []
        self.idempotency = IdempotencyStore(self._lock)
        self._server: _EmulatorHTTPServer | None = None
        self._service_threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The emulator's root URL, with the real port once started on port 0."""
        port = self._server.server_address[1] if self._server else self.port
        # A wildcard bind address is not something a browser can visit.
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{port}"

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
        LOGGER.info("Stripe emulator listening on %s", self.base_url)

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

    def _complete_session(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark a session paid, create its PaymentIntent and record the event."""
        with self._lock:
            record = self._open_record_locked(session_id, "paid")
            payment_intent = self._create_payment_intent_locked(record)
            customer_email = record.session["customer_email"]
            record.session.update(
                status="complete",
                payment_status="paid",
                payment_intent=payment_intent["id"],
                customer_details={"email": customer_email} if customer_email else None,
                url=None,
            )
            event = self._record_event_locked("checkout.session.completed", record.session)
            return copy.deepcopy(record.session), event

    def _create_payment_intent_locked(self, record: CheckoutRecord) -> dict[str, Any]:
        """Store the succeeded PaymentIntent that paying a session creates."""
        session = record.session
        payment_intent = {
            "id": random_id("pi_test_"),
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"],
            "created": self._now(),
            "currency": session["currency"],
            "latest_charge": random_id("ch_test_"),
            "livemode": False,
            "metadata": dict(record.payment_intent_metadata),
            "status": "succeeded",
        }
        self._payment_intents[payment_intent["id"]] = payment_intent
        return payment_intent

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
            "Stripe-Signature": sign_webhook_payload(payload, self.webhook_secret, int(time.time())),
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
        """GET /v1/payment_intents/:id."""
        with self._lock:
            payment_intent = self._payment_intents.get(str(intent_id))
            if payment_intent is None:
                raise resource_missing("payment_intent", str(intent_id), param="intent")
            return copy.deepcopy(payment_intent)

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
button.decline { background: #fff; color: #0a2540; }
button:focus-visible, a:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
"""

_EMULATOR_NOTE = (
    '<p class="emulator-note" role="note"><strong>Local test emulator.</strong> '
    "This is not real Stripe: no card is charged and no money moves.</p>"
)


def _escape(text: Any) -> str:
    """Escape text for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def render_html_document(title: str, body: str) -> str:
    """Wrap body in a complete, accessible HTML page."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(title)}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
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


def _render_payment_actions(session: dict[str, Any], error_message: str | None) -> str:
    """Render the decline alert (if any), the Pay / Decline forms and the cancel link."""
    base = f"/c/pay/{urllib.parse.quote(session['id'])}"
    parts = [f'<p class="error" role="alert">{_escape(error_message)}</p>'] if error_message else []
    parts.append(
        '<div class="actions">'
        f'<form method="post" action="{base}/pay">'
        '<button type="submit" class="pay">Pay</button></form>'
        f'<form method="post" action="{base}/decline">'
        '<button type="submit" class="decline">Decline</button></form>'
        "</div>"
    )
    if session.get("cancel_url"):
        parts.append(f'<p><a href="{_escape(session["cancel_url"])}">Cancel and go back</a></p>')
    return "\n".join(parts)


def _render_closed_session(session: dict[str, Any]) -> str:
    """Explain why a completed or expired session can no longer be paid."""
    if session["status"] == "complete":
        continue_link = f'<a href="{_escape(success_redirect_url(session))}">Continue</a>'
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
# HTTP layer
# ---------------------------------------------------------------------------

_HOSTED_PAGE_PATTERN = re.compile(r"/c/pay/([^/]+)(?:/(pay|decline))?")
_REDELIVER_PATTERN = re.compile(r"/_emulator/events/([^/]+)/redeliver")


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
            elif self._path.startswith("/_emulator/"):
                self._handle_emulator_control(method)
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

    def _decline_from_page(self, session_id: str) -> None:
        """Keep the buyer on the page with Stripe's decline message, as Checkout does."""
        try:
            self._emulator.decline(session_id)
        except ApiError:
            self._show_checkout(session_id, 409)
            return
        self._show_checkout(session_id, 402, DECLINE_MESSAGE)

    # -- /_emulator controls -------------------------------------------------

    def _handle_emulator_control(self, method: str) -> None:
        """Serve the emulator's own helpers: list events and redeliver one."""
        match = _REDELIVER_PATTERN.fullmatch(self._path)
        if method == "POST" and match is not None:
            event_id = urllib.parse.unquote(match.group(1))
            status = self._emulator.redeliver(event_id)
            self._send_json(200, {"event_id": event_id, "webhook_status": status})
        elif method == "GET" and self._path == "/_emulator/events":
            self._send_json(200, list_object(self._emulator.events(), "/_emulator/events"))
        else:
            raise ApiError(404, f"Unrecognized request URL ({method}: {self._path}).")

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
# Command line
# ---------------------------------------------------------------------------


def _parse_arguments(argv: Iterable[str] | None) -> argparse.Namespace:
    """Parse the command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.stripe_emulator",
        description="Run a local Stripe Checkout emulator for development.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
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
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
