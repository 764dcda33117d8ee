"""Integration tests for the local Stripe emulator, driven through the official SDK."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator, decode_stripe_form, format_money

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


def _receiver_handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
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


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A local HTTP server capturing webhook posts."""
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def emulator(webhook_receiver: WebhookReceiver) -> Iterator[StripeEmulator]:
    """A running emulator on a free port, delivering to the webhook receiver."""
    running = StripeEmulator(
        port=0,
        webhook_url=webhook_receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        retry_delays=TINY_RETRY_DELAYS,
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(emulator: StripeEmulator) -> stripe.StripeClient:
    """The official SDK pointed at the emulator (no SDK retries, so failures are fast)."""
    return stripe_client_for(emulator)


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


# ---------------------------------------------------------------------------
# Creating sessions
# ---------------------------------------------------------------------------


def test_created_session_is_open_with_amount_currency_reference_and_metadata(client, emulator):
    session = create_session(client)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_subtotal, session.amount_total, session.currency) == (895, 895, "gbp")
    assert session.client_reference_id == "order_123"
    assert session.customer_email == "buyer@example.test"
    assert session.metadata.to_dict() == {"order_ref": "TK-0001"}
    assert session.payment_intent is None
    assert session.url == f"{emulator.base_url}/c/pay/{session.id}"
    assert session.livemode is False
    assert session.expires_at - session.created == 24 * 60 * 60


def test_amount_total_multiplies_unit_amount_by_quantity_across_items(client):
    items = [line_item("Pass", 895, quantity=2), line_item("Sticker", 100, quantity=3)]

    session = create_session(client, line_items=items)

    assert session.amount_total == 2 * 895 + 3 * 100


def test_created_session_can_be_retrieved_and_listed(client):
    session = create_session(client)

    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    listed = client.v1.checkout.sessions.list()
    assert [item.id for item in listed.data] == [session.id]
    assert listed.has_more is False


def test_missing_line_items_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=session_params(line_items=None))

    assert refused.value.param == "line_items"
    assert refused.value.http_status == 400


def test_expires_at_under_30_minutes_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_session(client, expires_at=int(time.time()) + 10 * 60)

    assert refused.value.param == "expires_at"
    assert "30 minutes" in str(refused.value.user_message)


def test_expires_at_within_the_allowed_window_is_kept(client):
    expires_at = int(time.time()) + 45 * 60

    session = create_session(client, expires_at=expires_at)

    assert session.expires_at == expires_at


# ---------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------


def test_same_idempotency_key_and_params_replays_the_same_session(client):
    options = {"idempotency_key": "order_123-attempt-1"}

    first = client.v1.checkout.sessions.create(params=session_params(), options=options)
    second = client.v1.checkout.sessions.create(params=session_params(), options=options)

    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_same_idempotency_key_with_different_params_is_an_idempotency_error(client):
    options = {"idempotency_key": "order_123-attempt-1"}
    client.v1.checkout.sessions.create(params=session_params(), options=options)

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=session_params(client_reference_id="other"), options=options)


def test_requests_without_an_explicit_key_create_distinct_sessions(client):
    first = create_session(client)
    second = create_session(client)

    assert first.id != second.id


# ---------------------------------------------------------------------------
# Paying, declining and webhooks
# ---------------------------------------------------------------------------


def test_pay_button_redirects_to_success_url_after_the_webhook_was_delivered(client, emulator, webhook_receiver):
    session = create_session(client)

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    assert response.status == 303
    assert response.location == f"https://tracekit.test/paid?session_id={session.id}"
    # Delivered synchronously: already there when the redirect comes back.
    assert len(webhook_receiver.received) == 1


def test_completed_webhook_verifies_with_the_sdk_and_carries_the_paid_session(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay(session.id)

    [webhook] = webhook_receiver.wait_for(1)
    event = stripe.Webhook.construct_event(webhook.body, webhook.signature, WEBHOOK_SECRET)

    assert webhook.content_type == "application/json"
    assert event.type == "checkout.session.completed"
    assert event.api_version == "2024-06-20"
    paid = event.data.object
    assert (paid.id, paid.status, paid.payment_status) == (session.id, "complete", "paid")
    assert paid.payment_intent.startswith("pi_test_")
    assert paid.client_reference_id == "order_123"
    assert [stored["id"] for stored in emulator.events()] == [event.id]


def test_webhook_signed_with_another_secret_fails_verification(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)

    [webhook] = webhook_receiver.wait_for(1)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook.body, webhook.signature, "whsec_wrong")


def test_paid_session_has_a_succeeded_payment_intent_with_the_metadata(client, emulator):
    session = create_session(client)
    emulator.pay(session.id)

    paid = client.v1.checkout.sessions.retrieve(session.id)
    payment_intent = client.v1.payment_intents.retrieve(paid.payment_intent)

    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert payment_intent.status == "succeeded"
    assert (payment_intent.amount, payment_intent.currency) == (895, "gbp")
    assert payment_intent.metadata.to_dict() == {"order_ref": "TK-0001"}
    assert payment_intent.latest_charge.startswith("ch_test_")


def test_paid_session_can_be_retrieved_with_payment_intent_and_line_items_expanded(client, emulator):
    session = create_session(client)
    emulator.pay(session.id)

    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent", "line_items"]})

    assert expanded.payment_intent.status == "succeeded"
    assert [item.description for item in expanded.line_items.data] == [PRODUCT_NAME]
    assert client.v1.checkout.sessions.line_items.list(session.id).data[0].amount_total == 895


def test_webhook_handler_can_call_the_api_while_the_event_is_being_delivered(client, emulator, webhook_receiver):
    statuses_seen: list[str] = []
    webhook_receiver.on_delivery = lambda webhook: statuses_seen.append(
        client.v1.checkout.sessions.retrieve(webhook.event["data"]["object"]["id"]).status
    )
    session = create_session(client)

    emulator.pay(session.id)

    assert statuses_seen == ["complete"]


def test_decline_keeps_the_buyer_on_the_page_and_sends_no_event(client, emulator, webhook_receiver):
    session = create_session(client)

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/decline")

    assert response.status == 402
    assert "Your card was declined. Try again or use a different card." in response.body
    assert ">Pay</button>" in response.body and ">Decline</button>" in response.body
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert emulator.events() == []
    assert webhook_receiver.received == []


def test_paying_twice_is_refused_and_sends_one_event(client, emulator):
    session = create_session(client)
    request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay")

    assert response.status == 409
    assert "This payment is complete" in response.body
    assert ">Pay</button>" not in response.body
    assert len(emulator.events()) == 1


def test_failing_webhook_endpoint_is_retried_until_it_succeeds(client, emulator, webhook_receiver):
    webhook_receiver.statuses = [500, 503]

    emulator.pay(create_session(client).id)

    deliveries = webhook_receiver.wait_for(3)
    assert len({delivery.event["id"] for delivery in deliveries}) == 1
    time.sleep(0.2)
    assert len(webhook_receiver.received) == 3


def test_delivery_gives_up_after_five_attempts(client, emulator, webhook_receiver):
    webhook_receiver.statuses = [500] * 10

    emulator.pay(create_session(client).id)

    webhook_receiver.wait_for(5)
    time.sleep(0.3)
    assert len(webhook_receiver.received) == 5


def test_redeliver_sends_the_stored_event_again(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)
    [event] = emulator.events()

    assert emulator.redeliver(event["id"]) == 200

    first, second = webhook_receiver.wait_for(2)
    assert first.body == second.body


def test_redeliver_endpoint_resends_over_http(client, emulator, webhook_receiver):
    emulator.pay(create_session(client).id)
    [event] = emulator.events()

    status, body, _ = raw_api_request(emulator, "POST", f"/_emulator/events/{event['id']}/redeliver")

    assert (status, body["webhook_status"]) == (200, 200)
    assert len(webhook_receiver.wait_for(2)) == 2


def test_events_are_only_stored_when_no_webhook_url_is_set(client, emulator, webhook_receiver):
    emulator.webhook_url = None

    emulator.pay(create_session(client).id)

    assert [event["type"] for event in emulator.events()] == ["checkout.session.completed"]
    assert webhook_receiver.received == []


def test_stored_event_can_be_retrieved_through_the_api(client, emulator):
    emulator.pay(create_session(client).id)
    [stored] = emulator.events()

    event = client.v1.events.retrieve(stored["id"])

    assert event.type == "checkout.session.completed"


# ---------------------------------------------------------------------------
# Expiry
# ---------------------------------------------------------------------------


def test_expire_sends_expired_event_and_a_second_expire_is_refused(client, emulator, webhook_receiver):
    session = create_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    [webhook] = webhook_receiver.wait_for(1)
    event = stripe.Webhook.construct_event(webhook.body, webhook.signature, WEBHOOK_SECRET)
    assert (event.type, event.data.object.id) == ("checkout.session.expired", session.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_expired_session_page_shows_a_message_instead_of_buttons(client, emulator):
    session = create_session(client)
    emulator.expire(session.id)

    response = request_page(emulator, "GET", f"/c/pay/{session.id}")

    assert response.status == 200
    assert "has expired" in response.body
    assert "<button" not in response.body


def test_session_expires_by_itself_once_expires_at_has_passed(webhook_receiver):
    now = [time.time()]
    emulator = StripeEmulator(
        port=0, webhook_url=webhook_receiver.url, webhook_secret=WEBHOOK_SECRET, clock=lambda: now[0]
    )
    with emulator:
        client = stripe_client_for(emulator)
        session = create_session(client)
        now[0] += 24 * 60 * 60 + 1

        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        [webhook] = webhook_receiver.wait_for(1)
        assert webhook.event["type"] == "checkout.session.expired"


def test_background_sweeper_expires_sessions_nobody_looks_at(webhook_receiver):
    now = [time.time()]
    emulator = StripeEmulator(port=0, webhook_url=webhook_receiver.url, clock=lambda: now[0], sweep_interval=0.02)
    with emulator:
        create_session(stripe_client_for(emulator))
        now[0] += 24 * 60 * 60 + 1

        [webhook] = webhook_receiver.wait_for(1)
        assert webhook.event["type"] == "checkout.session.expired"


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_non_test_key_is_an_authentication_error(emulator):
    with pytest.raises(stripe.AuthenticationError):
        stripe_client_for(emulator, api_key="sk_live_nope").v1.checkout.sessions.list()


def test_unknown_session_is_an_invalid_request_error(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_unknown")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_unknown_route_is_a_stripe_shaped_404(emulator):
    status, body, _ = raw_api_request(emulator, "GET", "/v1/charges/ch_1")

    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"


def test_malformed_form_body_is_a_stripe_shaped_400(emulator):
    conflicting_form = "metadata[a]=1&metadata=2"

    status, body, _ = raw_api_request(emulator, "POST", "/v1/checkout/sessions", body=conflicting_form)

    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_non_integer_unit_amount_is_a_stripe_shaped_400(emulator):
    form = (
        "mode=payment&success_url=https://tracekit.test/ok&line_items[0][quantity]=1"
        "&line_items[0][price_data][currency]=gbp&line_items[0][price_data][unit_amount]=8.95"
        "&line_items[0][price_data][product_data][name]=Pass"
    )
    status, body, _ = raw_api_request(emulator, "POST", "/v1/checkout/sessions", body=form)

    assert status == 400
    assert body["error"]["param"] == "line_items[0][price_data][unit_amount]"


# ---------------------------------------------------------------------------
# Hosted page and helpers
# ---------------------------------------------------------------------------


def test_hosted_page_shows_product_amount_and_pay_and_decline_buttons(client, emulator):
    session = create_session(client)

    with urllib.request.urlopen(session.url, timeout=10) as response:
        page = response.read().decode()

    assert '<html lang="en">' in page
    assert "<h1>" in page
    assert PRODUCT_NAME in page
    assert "£8.95" in page
    assert '<button type="submit" class="pay">Pay</button>' in page
    assert '<button type="submit" class="decline">Decline</button>' in page
    assert "not real Stripe" in page
    assert 'href="https://tracekit.test/basket">Cancel and go back</a>' in page


def test_unknown_hosted_page_is_a_404(emulator):
    assert request_page(emulator, "GET", "/c/pay/cs_test_unknown").status == 404


def test_form_decoding_builds_nested_dicts_and_lists():
    decoded = decode_stripe_form(
        "line_items[0][price_data][unit_amount]=895&line_items[0][quantity]=1"
        "&metadata[order_ref]=X&payment_intent_data[metadata][order_ref]=X&expand[0]=line_items"
    )

    assert decoded == {
        "line_items": [{"price_data": {"unit_amount": "895"}, "quantity": "1"}],
        "metadata": {"order_ref": "X"},
        "payment_intent_data": {"metadata": {"order_ref": "X"}},
        "expand": ["line_items"],
    }


def test_money_is_formatted_from_integer_pence():
    assert format_money(895, "gbp") == "£8.95"
    assert format_money(123456, "gbp") == "£1,234.56"
    assert format_money(500, "jpy") == "500 JPY"
