"""Stripe through the official SDK. The same code talks to real Stripe or to the local emulator:
only the SDK's own base-address setting differs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import stripe

from .. import safejson
from ..domain.errors import InvalidWebhook, PaymentServiceUnavailable
from ..domain.money import Money
from ..domain.orders import Order
from ..domain.payments import MoneyView
from ..ports import CheckoutSession, PaymentEvent
from ..timeutil import utc_now

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

PRODUCT_NAME = "Property-marking kit"
_UNAVAILABLE = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


# (connect, read) seconds: three tries of this, with the SDK's back-off, fit inside API Gateway's
# 29-second limit, so a slow Stripe ends in tracekit's "try again" page rather than a gateway error.
TIMEOUT = (3.05, 7)


def stripe_client(secret_key: str, api_base: str | None, timeout=TIMEOUT) -> stripe.StripeClient:
    """A client that retries network faults and 5xx twice (the SDK's own back-off) before giving up."""
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else {},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


class StripePayments:
    """`clock` is the app's: a webhook's signed time is judged against it (the SDK's own check
    reads the machine's clock), so the emulator and tracekit agree on one time line in tests."""

    def __init__(self, client: stripe.StripeClient, webhook_secret: str, clock: Callable[[], datetime] = utc_now):
        self._client = client
        self._webhook_secret = webhook_secret
        self._clock = clock

    def start_checkout(
        self, order: Order, success_url: str, cancel_url: str, expires_at: datetime, attempt: int = 1
    ) -> CheckoutSession:
        """Idempotent per order and attempt (`order-<ref>`, then `order-<ref>-2`, …): a retried or
        doubled confirmation gets the same session, never a second one."""
        key = f"order-{order.reference}" if attempt <= 1 else f"order-{order.reference}-{attempt}"
        with _reachable():
            session = self._client.v1.checkout.sessions.create(
                params=_session_params(order, success_url, cancel_url, expires_at), options={"idempotency_key": key}
            )
        if session.url is None:  # only embedded and custom UI sessions have none; tracekit makes neither
            raise PaymentServiceUnavailable(f"Stripe made checkout session {session.id} without a URL")
        return CheckoutSession(session.id, session.url)

    def read_checkout(self, session_id: str) -> PaymentEvent:
        with _reachable():
            session = self._client.v1.checkout.sessions.retrieve(session_id)
        facts = _payment_event(
            {
                "id": f"checkout:{session_id}",
                "type": f"checkout.session.{session.status}",
                "data": {"object": session.to_dict()},
            }
        )
        if session.status == "complete":  # the shape a completed-session event has
            return replace(facts, type="checkout.session.completed")
        return facts

    def expire_checkout(self, session_id: str) -> None:
        try:
            with _reachable():
                self._client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            pass  # already expired or completed: nothing left to close

    def money_view(self, payment_intent_id: str) -> MoneyView:
        """Read, not infer: the PaymentIntent (order reference, amount), its charge (refunded so
        far) and, if disputed, the dispute's status."""
        with _reachable():
            intent = self._client.v1.payment_intents.retrieve(payment_intent_id)
            charge_id = _id_of(intent.latest_charge)
            charge = self._client.v1.charges.retrieve(charge_id) if charge_id else None
            dispute = self._latest_dispute(payment_intent_id) if charge is not None and charge.disputed else None
        return MoneyView(
            order_reference=intent.metadata.to_dict().get("order_reference"),
            payment_intent_id=payment_intent_id,
            amount=Money(intent.amount, intent.currency),
            amount_refunded=charge.amount_refunded if charge is not None else 0,
            dispute_status=dispute,
        )

    def _latest_dispute(self, payment_intent_id: str) -> str | None:
        disputes = self._client.v1.disputes.list(params={"payment_intent": payment_intent_id, "limit": 1})
        return disputes.data[0].status if disputes.data else None

    def refund(self, payment_intent_id: str, amount_pence: int, idempotency_key: str, order_reference: str) -> str:
        with _reachable():
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": payment_intent_id,
                    "amount": amount_pence,
                    "reason": "requested_by_customer",
                    "metadata": {"order_reference": order_reference},
                },
                options={"idempotency_key": idempotency_key},
            )
        return refund.id

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature_header, self._webhook_secret)
            _require_recent(signature_header, self._clock())
            event = safejson.loads(payload, safejson.STRIPE_EVENT_DEPTH)
        except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
            raise InvalidWebhook("signature or body not valid") from None
        return _payment_event(event)


def _require_recent(signature_header: str, now: datetime) -> None:
    """Stripe's replay protection (its default 300 s tolerance), on the app's clock. The header's
    signature has already been verified, so its `t=` is the time Stripe signed."""
    stamps = [part[2:] for part in signature_header.split(",") if part.startswith("t=")]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise ValueError("no signed time")
    if int(stamps[0]) < now.timestamp() - stripe.Webhook.DEFAULT_TOLERANCE:
        raise ValueError("signed too long ago")


@contextmanager
def _reachable():
    """Stripe down or failing after the SDK's own retries becomes one domain error."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise PaymentServiceUnavailable(type(exc).__name__) from None


def _session_params(order: Order, success_url: str, cancel_url: str, expires_at: datetime) -> SessionCreateParams:
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
    obj = _mapping(_mapping(event.get("data")).get("object"))
    kind, event_type = obj.get("object"), str(event.get("type", ""))
    if kind == "checkout.session":
        return PaymentEvent(
            id=event["id"],
            type=event_type,
            order_reference=_text(obj.get("client_reference_id")),
            session_id=_text(obj.get("id")),
            payment_status=_text(obj.get("payment_status")),
            paid=_money(obj.get("amount_total"), obj.get("currency")),
            payment_intent_id=_id_of(obj.get("payment_intent")),
        )
    if kind in ("charge", "refund", "dispute"):
        return PaymentEvent(id=event["id"], type=event_type, payment_intent_id=_id_of(obj.get("payment_intent")))
    return PaymentEvent(id=event["id"], type=event_type)


def _mapping(value: object) -> dict:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _id_of(value) -> str | None:
    """An id, whether Stripe sent it bare or expanded into an object."""
    if isinstance(value, dict):
        value = value.get("id")
    return _text(value)


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _money(amount, currency) -> Money | None:
    if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0 and isinstance(currency, str):
        return Money(amount, currency)
    return None
