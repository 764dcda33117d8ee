"""What the emulator's tests share: a tiny webhook receiver, SDK clients, session parameters and raw HTTP."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

import stripe

from devstack.stripe_emulator import StripeEmulator

WEBHOOK_SECRET = "whsec_test_secret"
TINY_RETRY_DELAYS = (0.01, 0.02, 0.04, 0.08)
PRODUCT_NAME = "Trace pass (7 days)"


# ---------------------------------------------------------------------------
# A tiny webhook receiver
# ---------------------------------------------------------------------------


@dataclass
class CapturedWebhook:
    """One webhook POST as the app would see it."""

    body: bytes
    signature: str
    content_type: str

    @property
    def event(self) -> dict[str, Any]:
        """The decoded event JSON."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Records webhook posts and answers with scripted statuses (200 once they run out)."""

    statuses: list[int] = field(default_factory=list)
    on_delivery: Callable[[CapturedWebhook], None] | None = None
    received: list[CapturedWebhook] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def record(self, webhook: CapturedWebhook) -> int:
        """Store a delivery and choose the status to answer with."""
        if self.on_delivery:
            self.on_delivery(webhook)
        with self.condition:
            self.received.append(webhook)
            self.condition.notify_all()
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, count: int, timeout: float = 3.0) -> list[CapturedWebhook]:
        """Block until at least count deliveries arrived, then return them all."""
        with self.condition:
            arrived = self.condition.wait_for(lambda: len(self.received) >= count, timeout)
            assert arrived, f"expected {count} webhook deliveries, got {len(self.received)}"
            return list(self.received)


def receiver_handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class bound to receiver."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            webhook = CapturedWebhook(
                body, self.headers.get("Stripe-Signature", ""), self.headers.get("Content-Type", "")
            )
            status = receiver.record(webhook)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def stripe_client_for(emulator: StripeEmulator, api_key: str = "sk_test_x") -> stripe.StripeClient:
    """Build an SDK client that talks to emulator."""
    return stripe.StripeClient(api_key, base_addresses={"api": emulator.base_url}, max_network_retries=0)


def line_item(name: str, unit_amount: int, quantity: int = 1) -> dict[str, Any]:
    """One price_data line item in pounds sterling."""
    price_data = {"currency": "gbp", "unit_amount": unit_amount, "product_data": {"name": name}}
    return {"price_data": price_data, "quantity": quantity}


def session_params(**overrides: Any) -> dict[str, Any]:
    """Parameters for a typical £8.95 one-item checkout, with overrides."""
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": "https://tracekit.test/paid?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://tracekit.test/basket",
        "client_reference_id": "order_123",
        "customer_email": "buyer@example.test",
        "metadata": {"order_ref": "TK-0001"},
        "payment_intent_data": {"metadata": {"order_ref": "TK-0001"}},
        "line_items": [line_item(PRODUCT_NAME, 895)],
    }
    params.update(overrides)
    return params


def create_session(client: stripe.StripeClient, **overrides: Any) -> Any:
    """Create a checkout session through the SDK."""
    return client.v1.checkout.sessions.create(params=session_params(**overrides))


@dataclass
class PageResponse:
    """A raw HTTP response from the hosted checkout page."""

    status: int
    location: str | None
    body: str


def request_page(emulator: StripeEmulator, method: str, path: str) -> PageResponse:
    """Make one request without following redirects."""
    parts = urllib.parse.urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        return PageResponse(response.status, response.getheader("Location"), response.read().decode())
    finally:
        connection.close()


def post_form(
    emulator: StripeEmulator, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> PageResponse:
    """POST a form like a browser would, without following the redirect."""
    parts = urllib.parse.urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    try:
        connection.request("POST", path, body=urllib.parse.urlencode(fields).encode(), headers=all_headers)
        response = connection.getresponse()
        return PageResponse(response.status, response.getheader("Location"), response.read().decode())
    finally:
        connection.close()


def raw_api_request(
    emulator: StripeEmulator, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Call the API without the SDK, returning status, JSON body and headers."""
    parts = urllib.parse.urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    all_headers = {"Authorization": "Bearer sk_test_x", "Content-Type": "application/x-www-form-urlencoded"}
    all_headers.update(headers or {})
    try:
        connection.request(method, path, body=body.encode() if body else None, headers=all_headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def pay_for_session(client: stripe.StripeClient, emulator: StripeEmulator, **overrides: Any) -> str:
    """Create a session, pay it with the Pay button's code path and return its PaymentIntent id."""
    session = create_session(client, **overrides)
    emulator.pay(session.id)
    return client.v1.checkout.sessions.retrieve(session.id).payment_intent


def verified_events(webhook_receiver: WebhookReceiver, count: int) -> list[Any]:
    """Wait for count deliveries and return them as SDK-verified events, in arrival order."""
    return [
        stripe.Webhook.construct_event(webhook.body, webhook.signature, WEBHOOK_SECRET)
        for webhook in webhook_receiver.wait_for(count)
    ]
