"""The ports: what the service layer needs from the outside world, in domain terms.

Each has a real adapter (chalicelib.adapters) and an in-memory fake (tests/fakes.py); one
contract suite runs against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Protocol

from .domain.fulfilment import FulfilmentMessage
from .domain.money import Money
from .domain.orders import Order
from .domain.register import RegisterEntry


@dataclass(frozen=True)
class CertificateLookup:
    entry: RegisterEntry | None
    kits_claimed: int


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified Stripe event, reduced to what tracekit acts on."""

    id: str
    type: str
    order_reference: str | None
    session_id: str | None
    payment_status: str | None
    paid: Money | None


class Register(Protocol):
    def find(self, reference_key: str) -> CertificateLookup:
        """The entry and how many kits it has claimed, in one round trip."""

    def save_all(self, entries: Iterable[RegisterEntry]) -> int:
        """Write entries in batches; returns how many were written."""


class Orders(Protocol):
    def create_claiming_certificate(self, order: Order, kits_per_certificate: int) -> None:
        """Store a new order and claim a kit for its certificate atomically.

        Raises CertificateAlreadyClaimed when the certificate has no kits left."""

    def get(self, reference: str) -> Order:
        """Raises OrderNotFound."""

    def record_checkout(self, reference: str, session: CheckoutSession) -> None: ...

    def mark_paid_once(self, reference: str, event_id: str, paid: Money, now: datetime) -> Order:
        """Mark an awaiting order paid, recording the event id in the same write.

        Returns the order as it now stands (already paid if the event was seen before).
        Raises OrderNotFound, or PaymentMismatch when the money does not match."""

    def abandon(self, reference: str) -> None:
        """Cancel an order that never reached payment and give its kit back to the certificate."""

    def mark_released(self, reference: str, now: datetime) -> None:
        """Record that the fulfilment message has been sent."""


class Payments(Protocol):
    def start_checkout(
        self, order: Order, success_url: str, cancel_url: str, expires_at: datetime
    ) -> CheckoutSession: ...

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Verify the signature over the raw bytes; raises InvalidWebhook."""


class FulfilmentQueue(Protocol):
    def send(self, message: FulfilmentMessage) -> None:
        """At-least-once, deduplicated per order."""
