"""In-memory fakes of every port. The contract suites in tests/integration run against these and
the real adapters alike, so a fake cannot drift from what it stands in for."""

from __future__ import annotations

import dataclasses
import hmac
import hashlib
import json
import threading
from datetime import datetime

from chalicelib.domain.errors import (
    CertificateAlreadyClaimed,
    InvalidWebhook,
    OrderNotFound,
    PaymentMismatch,
    PaymentServiceUnavailable,
)
from chalicelib.domain.fulfilment import FulfilmentMessage
from chalicelib.domain.money import Money
from chalicelib.domain.orders import FulfilmentState, Order, OrderState, PaymentState, mark_paid
from chalicelib.ports import CertificateLookup, CheckoutSession, PaymentEvent


class InMemoryRegister:
    def __init__(self, claims: dict[str, int] | None = None):
        self.entries = {}
        self.claims = claims if claims is not None else {}

    def find(self, reference_key):
        return CertificateLookup(self.entries.get(reference_key), self.claims.get(reference_key, 0))

    def save_all(self, entries):
        written = 0
        for entry in entries:
            self.entries[entry.reference_key] = entry
            written += 1
        return written


class InMemoryOrders:
    def __init__(self, claims: dict[str, int] | None = None):
        self.orders: dict[str, Order] = {}
        self.claims = claims if claims is not None else {}
        self._lock = threading.Lock()

    def create_claiming_certificate(self, order, kits_per_certificate):
        with self._lock:
            if self.claims.get(order.certificate_key, 0) >= kits_per_certificate:
                raise CertificateAlreadyClaimed()
            self.claims[order.certificate_key] = self.claims.get(order.certificate_key, 0) + 1
            self.orders[order.reference] = order

    def get(self, reference):
        try:
            return self.orders[reference]
        except KeyError:
            raise OrderNotFound(reference) from None

    def record_checkout(self, reference, session):
        self._replace(reference, checkout_session_id=session.id, checkout_url=session.url)

    def mark_paid_once(self, reference, event_id, paid, now):
        with self._lock:
            order = self.get(reference)
            if order.payment is not PaymentState.AWAITING or event_id in order.processed_events:
                return order
            try:
                updated = mark_paid(order, paid, event_id, now)
            except PaymentMismatch:
                raise
            self.orders[reference] = updated
            return updated

    def abandon(self, reference):
        with self._lock:
            order = self.get(reference)
            if order.state is OrderState.PLACED and order.payment is PaymentState.AWAITING:
                self.orders[reference] = dataclasses.replace(order, state=OrderState.CANCELLED)
                self.claims[order.certificate_key] -= 1

    def mark_released(self, reference, now):
        order = self.get(reference)
        if order.fulfilment is FulfilmentState.NOT_RELEASED:
            self._replace(reference, fulfilment=FulfilmentState.RELEASED, released_at=now)

    def _replace(self, reference, **changes):
        self.orders[reference] = dataclasses.replace(self.get(reference), **changes)


class FakePayments:
    """Stands in for Stripe: sessions by idempotency key, and webhooks signed as Stripe signs them."""

    def __init__(self, webhook_secret: str = "whsec_fake"):
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, dict] = {}
        self.unavailable = False

    def start_checkout(self, order, success_url, cancel_url, expires_at):
        if self.unavailable:
            raise PaymentServiceUnavailable("fake outage")
        key = f"order-{order.reference}"
        session = self.sessions.setdefault(
            key,
            {
                "id": f"cs_fake_{len(self.sessions) + 1}",
                "object": "checkout.session",
                "client_reference_id": order.reference,
                "amount_total": order.amount.pence,
                "currency": order.amount.currency,
                "payment_status": "unpaid",
            },
        )
        return CheckoutSession(session["id"], f"https://pay.example/{session['id']}")

    def completed_event(
        self,
        reference: str,
        event_id: str = "evt_1",
        amount: int = 895,
        currency: str = "gbp",
        payment_status: str = "paid",
    ) -> tuple[bytes, str]:
        body = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": "checkout.session.completed",
                "data": {
                    "object": {
                        "object": "checkout.session",
                        "id": "cs_fake",
                        "client_reference_id": reference,
                        "amount_total": amount,
                        "currency": currency,
                        "payment_status": payment_status,
                    }
                },
            }
        ).encode()
        return body, self.sign(body)

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        t = int(datetime.now().timestamp()) if timestamp is None else timestamp
        mac = hmac.new(self.webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def parse_webhook(self, payload, signature_header):
        try:
            parts = dict(p.split("=", 1) for p in signature_header.split(","))
            expected = hmac.new(
                self.webhook_secret.encode(), f"{parts['t']}.".encode() + payload, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, parts["v1"]):
                raise ValueError
            event = json.loads(payload)
            obj = event["data"]["object"]
            return PaymentEvent(
                event["id"],
                event["type"],
                obj.get("client_reference_id"),
                obj.get("id"),
                obj.get("payment_status"),
                Money(obj["amount_total"], obj["currency"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidWebhook("bad signature or shape") from None


class InMemoryFulfilmentQueue:
    """Deduplicates per order, as the FIFO queue does within its window."""

    def __init__(self):
        self.messages: list[dict] = []
        self._seen: set[str] = set()

    def send(self, message: FulfilmentMessage):
        if message.deduplication_id not in self._seen:
            self._seen.add(message.deduplication_id)
            self.messages.append(message.to_document())

    def receive_all(self) -> list[dict]:
        return list(self.messages)
