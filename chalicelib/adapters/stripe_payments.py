"""Stripe through the official SDK. The same code talks to real Stripe or to the local emulator:
only the SDK's own base-address setting differs."""

from __future__ import annotations

import json
from datetime import datetime

import stripe

from ..domain.errors import InvalidWebhook, PaymentServiceUnavailable
from ..domain.money import Money
from ..domain.orders import Order
from ..ports import CheckoutSession, PaymentEvent

PRODUCT_NAME = "Property-marking kit"
_UNAVAILABLE = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


def stripe_client(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    """A client that retries network faults twice (with the SDK's own back-off) before giving up."""
    addresses = {"api": api_base} if api_base else {}
    return stripe.StripeClient(secret_key, base_addresses=addresses, max_network_retries=2)


class StripePayments:
    def __init__(self, client: stripe.StripeClient, webhook_secret: str):
        self._client = client
        self._webhook_secret = webhook_secret

    def start_checkout(self, order: Order, success_url: str, cancel_url: str, expires_at: datetime) -> CheckoutSession:
        """Idempotent per order: a retried confirmation gets the same session, never a second one."""
        try:
            session = self._client.v1.checkout.sessions.create(
                params=_session_params(order, success_url, cancel_url, expires_at),
                options={"idempotency_key": f"order-{order.reference}"},
            )
        except _UNAVAILABLE as exc:
            raise PaymentServiceUnavailable(type(exc).__name__) from None
        return CheckoutSession(session.id, session.url)

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature_header, self._webhook_secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
            raise InvalidWebhook("signature or body not valid") from None
        return _payment_event(event)


def _session_params(order: Order, success_url: str, cancel_url: str, expires_at: datetime) -> dict:
    reference = {"order_reference": order.reference}
    return {
        "mode": "payment",
        "client_reference_id": order.reference,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": order.amount.currency,
                    "unit_amount": order.amount.pence,
                    "product_data": {"name": PRODUCT_NAME},
                },
            }
        ],
        "metadata": reference,
        "payment_intent_data": {"metadata": reference},
        "success_url": success_url,
        "cancel_url": cancel_url,
        "expires_at": int(expires_at.timestamp()),
    }


def _payment_event(event) -> PaymentEvent:
    """Reduce a verified event to what tracekit acts on; unexpected shapes give an inert event."""
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidWebhook("not a Stripe event")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    obj = data.get("object") if isinstance(data.get("object"), dict) else {}
    if obj.get("object") != "checkout.session":
        return PaymentEvent(event["id"], str(event.get("type", "")), None, None, None, None)
    return PaymentEvent(
        id=event["id"],
        type=str(event.get("type", "")),
        order_reference=_text(obj.get("client_reference_id")),
        session_id=_text(obj.get("id")),
        payment_status=_text(obj.get("payment_status")),
        paid=_money(obj.get("amount_total"), obj.get("currency")),
    )


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _money(amount, currency) -> Money | None:
    if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0 and isinstance(currency, str):
        return Money(amount, currency)
    return None
