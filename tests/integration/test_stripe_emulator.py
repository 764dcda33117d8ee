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

from devstack.stripe_emulator import ApiError, StripeEmulator, card_fee, decode_stripe_form, format_money

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
    # Charges are emulated now, so use a resource the emulator does not know at all.
    status, body, _ = raw_api_request(emulator, "GET", "/v1/customers/cus_1")

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


# ---------------------------------------------------------------------------
# Charges
# ---------------------------------------------------------------------------


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


def test_paying_stores_a_succeeded_charge_without_the_payment_intent_metadata(client, emulator):
    payment_intent = client.v1.payment_intents.retrieve(pay_for_session(client, emulator))

    charge = client.v1.charges.retrieve(payment_intent.latest_charge)

    assert (charge.id, charge.object, charge.payment_intent) == (
        payment_intent.latest_charge,
        "charge",
        payment_intent.id,
    )
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.currency) == (895, 895, 0, "gbp")
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert (charge.refunded, charge.disputed) == (False, False)
    assert charge.balance_transaction.startswith("txn_test_")
    # Stripe does not copy PaymentIntent metadata onto the charge.
    assert charge.metadata.to_dict() == {}


def test_charges_are_listed_and_filtered_by_payment_intent(client, emulator):
    first = pay_for_session(client, emulator)
    second = pay_for_session(client, emulator)

    filtered = client.v1.charges.list(params={"payment_intent": first})

    assert [charge.payment_intent for charge in filtered.data] == [first]
    assert [charge.payment_intent for charge in client.v1.charges.list().data] == [second, first]


def test_payment_intent_can_be_retrieved_with_its_charge_expanded(client, emulator):
    payment_intent_id = pay_for_session(client, emulator)

    payment_intent = client.v1.payment_intents.retrieve(payment_intent_id, params={"expand": ["latest_charge"]})

    assert (payment_intent.latest_charge.object, payment_intent.latest_charge.amount) == ("charge", 895)


def test_unknown_charge_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.charges.retrieve("ch_test_unknown")

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


# ---------------------------------------------------------------------------
# Bank transfers (async payments)
# ---------------------------------------------------------------------------


def test_bank_transfer_button_completes_the_session_unpaid_and_redirects(client, emulator, webhook_receiver):
    session = create_session(client)
    assert (
        "Pay by bank transfer (confirms later)</button>" in request_page(emulator, "GET", f"/c/pay/{session.id}").body
    )

    response = request_page(emulator, "POST", f"/c/pay/{session.id}/pay_async")

    assert (response.status, response.location) == (303, f"https://tracekit.test/paid?session_id={session.id}")
    # Delivered before the redirect, as for Pay.
    [webhook] = webhook_receiver.received
    assert (webhook.event["type"], webhook.event["data"]["object"]["payment_status"]) == (
        "checkout.session.completed",
        "unpaid",
    )
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert (completed.status, completed.payment_status) == ("complete", "unpaid")
    payment_intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    assert (payment_intent.status, payment_intent.latest_charge) == ("processing", None)
    assert client.v1.charges.list(params={"payment_intent": payment_intent.id}).data == []
    assert "bank transfer has been started" in request_page(emulator, "GET", f"/c/pay/{session.id}").body


def test_settled_bank_transfer_sends_async_payment_succeeded_and_creates_the_charge(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay_async(session.id)

    emulator.settle_async(session.id, succeeded=True)

    events = verified_events(webhook_receiver, 2)
    assert [(event.type, event.data.object.payment_status) for event in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_succeeded", "paid"),
    ]
    payment_intent = client.v1.payment_intents.retrieve(events[0].data.object.payment_intent)
    assert (payment_intent.status, payment_intent.amount_received) == ("succeeded", 895)
    charge = client.v1.charges.retrieve(payment_intent.latest_charge)
    assert (charge.amount, charge.status, charge.payment_intent) == (895, "succeeded", payment_intent.id)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_failed_bank_transfer_sends_async_payment_failed_and_creates_no_charge(client, emulator, webhook_receiver):
    session = create_session(client)
    emulator.pay_async(session.id)

    emulator.settle_async(session.id, succeeded=False)

    events = verified_events(webhook_receiver, 2)
    assert [(event.type, event.data.object.payment_status) for event in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
    ]
    payment_intent = client.v1.payment_intents.retrieve(events[0].data.object.payment_intent)
    assert (payment_intent.status, payment_intent.latest_charge) == ("requires_payment_method", None)
    assert client.v1.charges.list().data == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_settle_endpoint_takes_the_outcome_from_the_form_or_the_query(client, emulator):
    by_form, by_query = create_session(client), create_session(client)
    emulator.pay_async(by_form.id)
    emulator.pay_async(by_query.id)

    form_status, settled, _ = raw_api_request(
        emulator, "POST", f"/_emulator/sessions/{by_form.id}/settle", body="outcome=succeeded"
    )
    query_status, failed, _ = raw_api_request(
        emulator, "POST", f"/_emulator/sessions/{by_query.id}/settle?outcome=failed"
    )

    assert (form_status, settled["payment_status"]) == (200, "paid")
    assert (query_status, failed["payment_status"]) == (200, "unpaid")
    assert [event["type"] for event in emulator.events()][-2:] == [
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    ]


def test_only_a_pending_bank_transfer_can_be_settled(client, emulator):
    card_session = create_session(client)
    emulator.pay(card_session.id)
    transfer = create_session(client)
    emulator.pay_async(transfer.id)
    emulator.settle_async(transfer.id, succeeded=True)

    for session_id in (card_session.id, transfer.id):
        with pytest.raises(ApiError) as refused:
            emulator.settle_async(session_id, succeeded=True)
        assert (refused.value.status, refused.value.code) == (400, "payment_intent_unexpected_state")
    status, body, _ = raw_api_request(emulator, "POST", f"/_emulator/sessions/{transfer.id}/settle?outcome=maybe")
    assert (status, body["error"]["param"]) == (400, "outcome")


def test_a_pending_bank_transfer_cannot_be_refunded(client, emulator):
    session = create_session(client)
    emulator.pay_async(session.id)
    payment_intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": payment_intent})

    assert refused.value.code == "payment_intent_unexpected_state"


# ---------------------------------------------------------------------------
# Refunds
# ---------------------------------------------------------------------------


def test_full_refund_marks_the_charge_refunded_and_sends_refund_created_then_charge_refunded(
    client, emulator, webhook_receiver
):
    payment_intent = pay_for_session(client, emulator)

    refund = client.v1.refunds.create(
        params={"payment_intent": payment_intent, "reason": "requested_by_customer", "metadata": {"ticket": "T-1"}}
    )

    assert refund.id.startswith("re_test_")
    assert (refund.object, refund.status, refund.amount, refund.currency) == ("refund", "succeeded", 895, "gbp")
    assert (refund.payment_intent, refund.reason) == (payment_intent, "requested_by_customer")
    assert refund.metadata.to_dict() == {"ticket": "T-1"}
    _, refund_created, charge_refunded = verified_events(webhook_receiver, 3)
    assert (refund_created.type, refund_created.data.object.id) == ("refund.created", refund.id)
    assert charge_refunded.type == "charge.refunded"
    assert (charge_refunded.data.object.id, charge_refunded.data.object.refunded) == (refund.charge, True)
    charge = client.v1.charges.retrieve(refund.charge)
    assert (charge.amount_refunded, charge.refunded) == (895, True)


def test_partial_refunds_add_up_until_the_charge_is_fully_refunded(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    first = client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 300})
    charge = client.v1.charges.retrieve(first.charge)
    assert (charge.amount_refunded, charge.refunded) == (300, False)
    rest = client.v1.refunds.create(params={"charge": charge.id})

    assert rest.amount == 895 - 300
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (895, True)
    assert [r.id for r in client.v1.refunds.list(params={"payment_intent": payment_intent}).data] == [rest.id, first.id]
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id}).data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 300
    events = [webhook.event for webhook in webhook_receiver.wait_for(5)]
    charge_refunded = [event["data"]["object"] for event in events if event["type"] == "charge.refunded"]
    assert [(c["amount_refunded"], c["refunded"]) for c in charge_refunded] == [(300, False), (895, True)]


def test_refunding_more_than_remains_is_refused(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 800})

    with pytest.raises(stripe.InvalidRequestError) as too_large:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 100})
    client.v1.refunds.create(params={"payment_intent": payment_intent})
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 1})

    assert (too_large.value.http_status, too_large.value.code, too_large.value.param) == (
        400,
        "amount_too_large",
        "amount",
    )
    assert (nothing_left.value.http_status, nothing_left.value.code) == (400, "charge_already_refunded")
    assert [refund.amount for refund in client.v1.refunds.list().data] == [95, 800]


def test_the_same_idempotency_key_twice_gives_one_refund(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)
    options = {"idempotency_key": "refund-order_123"}
    params = {"payment_intent": payment_intent, "amount": 200}

    first = client.v1.refunds.create(params=params, options=options)
    second = client.v1.refunds.create(params=params, options=options)

    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.refunds.list().data) == 1
    assert client.v1.charges.retrieve(first.charge).amount_refunded == 200
    webhook_receiver.wait_for(3)
    assert [event["type"] for event in emulator.events()].count("refund.created") == 1


def test_refund_needs_a_known_payment_and_reason(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    with pytest.raises(stripe.InvalidRequestError) as no_target:
        client.v1.refunds.create(params={"amount": 100})
    with pytest.raises(stripe.InvalidRequestError) as bad_reason:
        client.v1.refunds.create(params={"payment_intent": payment_intent, "reason": "changed_mind"})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.create(params={"payment_intent": "pi_test_unknown"})

    assert (no_target.value.http_status, no_target.value.code) == (400, "parameter_missing")
    assert (bad_reason.value.http_status, bad_reason.value.param) == (400, "reason")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert client.v1.refunds.list().data == []


def test_a_dashboard_refund_sends_the_same_events_as_an_api_refund(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    refund = emulator.refund(payment_intent, amount=100)

    # Delivered before refund() returns.
    assert [webhook.event["type"] for webhook in webhook_receiver.received] == [
        "checkout.session.completed",
        "refund.created",
        "charge.refunded",
    ]
    assert (refund["amount"], refund["payment_intent"], refund["reason"]) == (100, payment_intent, None)
    assert client.v1.refunds.retrieve(refund["id"]).amount == 100
    charge = client.v1.charges.retrieve(refund["charge"])
    assert (charge.amount_refunded, charge.refunded) == (100, False)
    assert emulator.refund(payment_intent)["amount"] == 795


# ---------------------------------------------------------------------------
# Disputes
# ---------------------------------------------------------------------------


def test_a_dispute_marks_the_charge_disputed_and_sends_created_then_closed(client, emulator, webhook_receiver):
    payment_intent = pay_for_session(client, emulator)

    dispute = emulator.dispute(payment_intent)
    charge = client.v1.charges.retrieve(dispute["charge"])
    closed = emulator.close_dispute(dispute["id"], won=False)

    assert dispute["id"].startswith("dp_test_")
    assert (dispute["object"], dispute["status"], dispute["reason"]) == ("dispute", "needs_response", "fraudulent")
    assert (dispute["amount"], dispute["currency"], dispute["payment_intent"]) == (895, "gbp", payment_intent)
    assert charge.disputed is True
    assert closed["status"] == "lost"
    _, created, closed_event = verified_events(webhook_receiver, 3)
    assert [(event.type, event.data.object.status) for event in (created, closed_event)] == [
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
    ]
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"
    assert [d.id for d in client.v1.disputes.list(params={"payment_intent": payment_intent}).data] == [dispute["id"]]
    assert [d.id for d in client.v1.disputes.list(params={"charge": charge.id}).data] == [dispute["id"]]


def test_a_partial_dispute_can_be_won_once_and_a_charge_is_disputed_only_once(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    dispute = emulator.dispute(payment_intent, amount=500, reason="product_not_received")

    assert (dispute["amount"], dispute["reason"]) == (500, "product_not_received")
    with pytest.raises(ApiError) as twice:
        emulator.dispute(payment_intent)
    assert twice.value.code == "charge_disputed"
    assert emulator.close_dispute(dispute["id"], won=True)["status"] == "won"
    with pytest.raises(ApiError) as reclosed:
        emulator.close_dispute(dispute["id"], won=False)
    assert reclosed.value.status == 400
    with pytest.raises(ApiError) as bad_reason:
        emulator.dispute(pay_for_session(client, emulator), reason="bored")
    assert bad_reason.value.param == "reason"


# ---------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------


@pytest.fixture
def fast_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the SDK's retry back-off (at least 0.5 s a retry) so these tests stay quick."""
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)


def retrying_client(emulator: StripeEmulator, max_network_retries: int) -> stripe.StripeClient:
    """An SDK client that retries like production code does."""
    return stripe.StripeClient(
        "sk_test_x", base_addresses={"api": emulator.base_url}, max_network_retries=max_network_retries
    )


def test_an_injected_failure_is_retried_by_the_sdk_and_creates_one_session(emulator, fast_sdk_retries):
    client = retrying_client(emulator, max_network_retries=2)
    emulator.fail_next_requests(1)

    session = create_session(client)

    assert emulator.api_requests() == [("POST", "/v1/checkout/sessions")] * 2
    assert [listed.id for listed in client.v1.checkout.sessions.list().data] == [session.id]


def test_failures_outlasting_the_sdk_retries_raise_api_error_and_create_nothing(emulator, fast_sdk_retries):
    client = retrying_client(emulator, max_network_retries=1)
    emulator.fail_next_requests(5)

    with pytest.raises(stripe.APIError) as failed:
        create_session(client)

    assert failed.value.http_status == 500
    assert emulator.api_requests() == [("POST", "/v1/checkout/sessions")] * 2
    emulator.fail_next_requests(0)
    assert client.v1.checkout.sessions.list().data == []
    assert emulator.events() == []


def test_failures_can_be_injected_over_http_from_another_process(client, emulator):
    status, body, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body="count=2&status=503")
    assert (status, body["count"], body["status"]) == (200, 2, 503)

    for _ in range(2):
        with pytest.raises(stripe.APIError) as failed:
            create_session(client)
        assert failed.value.http_status == 503
    assert client.v1.checkout.sessions.list().data == []
    create_session(client)  # the third request runs
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_the_failure_control_refuses_a_bad_count_or_status_and_can_be_cancelled(client, emulator):
    for body in ("count=-1", "count=x", "", "count=1&status=200", "count=1&status=600"):
        status, refused, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body=body)
        assert status == 400, body
        assert refused["error"]["param"] in ("count", "status"), body
    raw_api_request(emulator, "POST", "/_emulator/failures", body="count=3")
    status, body, _ = raw_api_request(emulator, "POST", "/_emulator/failures", body="count=0")
    assert (status, body["count"]) == (200, 0)
    create_session(client)


def test_a_refund_retried_after_an_injected_failure_happens_once(client, emulator, fast_sdk_retries):
    payment_intent = pay_for_session(client, emulator)
    emulator.fail_next_requests(1, status=503)

    refund = retrying_client(emulator, max_network_retries=1).v1.refunds.create(
        params={"payment_intent": payment_intent}
    )

    assert [listed.id for listed in client.v1.refunds.list().data] == [refund.id]


def test_an_injected_failure_leaves_the_idempotency_key_unused(emulator):
    form = urllib.parse.urlencode({"payment_intent": "pi_test_unknown"})
    headers = {"Idempotency-Key": "key-1"}
    emulator.fail_next_requests(1, status=503)

    failed = raw_api_request(emulator, "POST", "/v1/refunds", body=form, headers=headers)
    retried = raw_api_request(emulator, "POST", "/v1/refunds", body=form, headers=headers)

    status, body, response_headers = failed
    assert (status, body["error"]["type"], response_headers["Stripe-Should-Retry"]) == (503, "api_error", "true")
    # The retry ran for real (a 404 for the unknown PaymentIntent), not a replay of the 503.
    assert (retried[0], retried[1]["error"]["code"]) == (404, "resource_missing")
    assert "Idempotent-Replayed" not in retried[2]


def test_delayed_requests_are_slow_but_succeed(client, emulator):
    emulator.delay_next_requests(1, 0.3)

    started = time.monotonic()
    client.v1.checkout.sessions.list()
    slow = time.monotonic() - started
    started = time.monotonic()
    client.v1.checkout.sessions.list()
    fast = time.monotonic() - started

    assert slow >= 0.3 > fast


# ---------------------------------------------------------------------------
# Developer dashboard
# ---------------------------------------------------------------------------


def test_dashboard_lists_sessions_and_payments_with_labelled_forms(client, emulator):
    open_session = create_session(client)
    payment_intent = pay_for_session(client, emulator)

    page = request_page(emulator, "GET", "/_emulator")

    assert page.status == 200
    assert '<html lang="en">' in page.body
    assert f"<code>{open_session.id}</code>" in page.body
    assert f"<code>{payment_intent}</code>" in page.body
    assert "£8.95" in page.body and "unpaid" in page.body
    assert f'action="/_emulator/sessions/{open_session.id}/expire"' in page.body
    assert f'action="/_emulator/payment_intents/{payment_intent}/refund"' in page.body
    assert f'<label for="refund-amount-{payment_intent}">' in page.body
    assert f'<input id="refund-amount-{payment_intent}" name="amount"' in page.body


def test_dashboard_refund_form_redirects_back_with_a_notice(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    form = {"view": "dashboard", "amount": "300"}

    response = post_form(
        emulator, f"/_emulator/payment_intents/{payment_intent}/refund", form, {"Origin": emulator.base_url}
    )

    assert (response.status, response.location) == (303, "/_emulator?done=refunded")
    assert "The refund was created." in request_page(emulator, "GET", response.location).body
    [refund] = client.v1.refunds.list().data
    assert refund.amount == 300


def test_dashboard_form_errors_are_shown_escaped_on_the_dashboard(client, emulator):
    response = post_form(emulator, "/_emulator/payment_intents/%3Cscript%3E/refund", {"view": "dashboard"})

    assert response.status == 404
    assert 'role="alert"' in response.body
    assert "&lt;script&gt;" in response.body and "<script>" not in response.body


def test_dashboard_dispute_close_and_expire_controls(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    open_session = create_session(client)

    opened = post_form(emulator, f"/_emulator/payment_intents/{payment_intent}/dispute", {"reason": "duplicate"})
    dispute = json.loads(opened.body)
    closed = post_form(emulator, f"/_emulator/disputes/{dispute['id']}/close", {"view": "dashboard", "outcome": "won"})
    expired = post_form(emulator, f"/_emulator/sessions/{open_session.id}/expire", {})

    assert (opened.status, dispute["reason"]) == (200, "duplicate")
    assert (closed.status, client.v1.disputes.retrieve(dispute["id"]).status) == (303, "won")
    assert (expired.status, json.loads(expired.body)["status"]) == (200, "expired")


def test_dashboard_controls_refuse_posts_from_other_sites(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    response = post_form(
        emulator, f"/_emulator/payment_intents/{payment_intent}/refund", {}, {"Origin": "https://evil.example"}
    )

    assert response.status == 403
    assert client.v1.refunds.list().data == []


# ---------------------------------------------------------------------------
# Balance transactions and payouts
# ---------------------------------------------------------------------------

TWO_DAYS = 2 * 24 * 60 * 60
# Midnight UTC a week before this run: seeded charges are back-dated before anything paid live.
SEED_START = int(time.time()) // 86400 * 86400 - 7 * 86400


@pytest.fixture
def clock() -> list[float]:
    """A settable clock for the emulator: clock[0] is the current Unix time."""
    return [float(SEED_START)]


@pytest.fixture
def clocked_emulator(webhook_receiver: WebhookReceiver, clock: list[float]) -> Iterator[StripeEmulator]:
    """A running emulator whose time only moves when a test moves it."""
    with StripeEmulator(
        port=0, webhook_url=webhook_receiver.url, webhook_secret=WEBHOOK_SECRET, clock=lambda: clock[0]
    ) as running:
        yield running


def test_card_fee_is_one_and_a_half_percent_rounded_half_up_plus_20p():
    assert [card_fee(amount) for amount in (895, 1000, 100, 300, 1)] == [33, 35, 22, 25, 20]


def test_a_paid_charge_has_a_pending_balance_transaction_net_of_the_card_fee(client, emulator):
    charge = client.v1.charges.retrieve(
        client.v1.payment_intents.retrieve(pay_for_session(client, emulator)).latest_charge
    )

    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)

    assert txn.id.startswith("txn_test_") and txn.object == "balance_transaction"
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (895, 33, 862, "gbp")
    assert (txn.type, txn.reporting_category, txn.source, txn.status) == ("charge", "charge", charge.id, "pending")
    assert txn.available_on == txn.created + TWO_DAYS
    assert [(fee.amount, fee.currency, fee.type) for fee in txn.fee_details] == [(33, "gbp", "stripe_fee")]


def test_a_settled_bank_transfer_gets_its_charge_transaction_too(client, emulator):
    session = create_session(client)
    emulator.pay_async(session.id)
    assert client.v1.balance_transactions.list().data == []

    emulator.settle_async(session.id, succeeded=True)

    [txn] = client.v1.balance_transactions.list().data
    charge = client.v1.charges.list().data[0]
    assert (txn.id, txn.source, txn.net) == (charge.balance_transaction, charge.id, 862)


def test_a_partial_refund_adds_a_negative_refund_transaction_with_no_fee(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    refund = client.v1.refunds.create(params={"payment_intent": payment_intent, "amount": 300})

    txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (txn.type, txn.reporting_category, txn.source) == ("refund", "refund", refund.id)
    assert (txn.amount, txn.fee, txn.net, txn.fee_details) == (-300, 0, -300, [])
    assert [t.id for t in client.v1.balance_transactions.list(params={"type": "refund"}).data] == [txn.id]


def test_a_dispute_withdraws_amount_and_fee_and_only_a_won_dispute_is_reversed(client, emulator):
    won = emulator.dispute(pay_for_session(client, emulator))
    lost = emulator.dispute(pay_for_session(client, emulator))

    [withdrawal] = won["balance_transactions"]
    emulator.close_dispute(won["id"], won=True)
    emulator.close_dispute(lost["id"], won=False)

    assert (withdrawal["type"], withdrawal["reporting_category"], withdrawal["source"]) == (
        "adjustment",
        "dispute",
        won["id"],
    )
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-895, 2000, -2895)
    reversal, listed_withdrawal = client.v1.balance_transactions.list(params={"source": won["id"]}).data
    assert listed_withdrawal.id == withdrawal["id"]
    assert (reversal.type, reversal.reporting_category, reversal.amount, reversal.fee, reversal.net) == (
        "adjustment",
        "dispute_reversal",
        895,
        0,
        895,
    )
    assert [t.id for t in client.v1.disputes.retrieve(won["id"]).balance_transactions] == [
        withdrawal["id"],
        reversal.id,
    ]
    assert [t.amount for t in client.v1.balance_transactions.list(params={"source": lost["id"]}).data] == [-895]


def test_run_payout_pays_out_the_available_nets_and_lists_exactly_what_it_contains(
    clocked_emulator, clock, webhook_receiver
):
    emulator = clocked_emulator
    client = stripe_client_for(emulator)
    first = pay_for_session(client, emulator)
    pay_for_session(client, emulator)
    client.v1.refunds.create(params={"payment_intent": first, "amount": 300})
    contained = {t.id for t in client.v1.balance_transactions.list().data}
    assert emulator.run_payout() is None  # nothing is available for two days
    clock[0] += TWO_DAYS
    pay_for_session(client, emulator)  # not available until two days from now

    payout = emulator.run_payout()

    assert payout["id"].startswith("po_test_")
    assert (payout["object"], payout["amount"], payout["currency"]) == ("payout", 862 + 862 - 300, "gbp")
    assert (payout["status"], payout["method"], payout["automatic"]) == ("paid", "standard", True)
    listed = client.v1.balance_transactions.list(params={"payout": payout["id"]}).data
    assert {t.id for t in listed} == contained and all(t.status == "available" for t in listed)
    assert [t.created for t in listed] == sorted((t.created for t in listed), reverse=True)
    own = client.v1.balance_transactions.retrieve(payout["balance_transaction"], params={"expand": ["source"]})
    assert (own.type, own.reporting_category, own.amount, own.fee, own.source.id) == (
        "payout",
        "payout",
        -1424,
        0,
        payout["id"],
    )
    assert client.v1.payouts.retrieve(payout["id"]).balance_transaction == own.id
    # Three checkouts, the refund's two events and payout.paid (delivered before run_payout returned).
    paid = [webhook.event for webhook in webhook_receiver.wait_for(6) if webhook.event["type"] == "payout.paid"]
    assert [event["data"]["object"]["id"] for event in paid] == [payout["id"]]
    # Only the late charge is left; the payout's own transaction is never paid out again.
    clock[0] += TWO_DAYS
    assert emulator.run_payout()["amount"] == 862
    assert emulator.run_payout() is None


def test_payouts_are_listed_newest_first_and_filtered_by_created_and_arrival_date(client, emulator):
    emulator.seed_paid_charges([("TK-1", 1000, "gbp", SEED_START), ("TK-2", 2000, "gbp", SEED_START + 10)])
    first = emulator.run_payout(now=SEED_START + TWO_DAYS)
    second = emulator.run_payout(now=SEED_START + TWO_DAYS + 10)

    everything = client.v1.payouts.list().data
    early = client.v1.payouts.list(params={"created": {"lt": SEED_START + TWO_DAYS + 10}}).data
    late = client.v1.payouts.list(params={"arrival_date": {"gte": SEED_START + TWO_DAYS + 10}}).data

    assert [p.id for p in everything] == [second["id"], first["id"]]
    assert [(p.id, p.amount) for p in early] == [(first["id"], 965)]
    assert [(p.id, p.amount) for p in late] == [(second["id"], 1950)]
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.balance_transactions.list(params={"payout": "po_test_unknown"})
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")


def test_created_filters_and_auto_pagination_expand_the_payment_intent_metadata(client, emulator):
    live = pay_for_session(client, emulator)
    # Seeded rows are back-dated before the live payment and arrive out of order.
    rows = [(f"TK-{number:03d}", 895, "gbp", SEED_START + number * 60) for number in range(25)]
    emulator.seed_paid_charges(rows[::-1])
    params = {
        "created": {"gte": SEED_START + 5 * 60, "lt": SEED_START + 20 * 60},
        "limit": 4,
        "expand": ["data.source", "data.source.payment_intent"],
    }
    requests_before = len(emulator.api_requests())

    listed = list(client.v1.balance_transactions.list(params=params).auto_paging_iter())

    assert [t.source.payment_intent.metadata.order_reference for t in listed] == [
        f"TK-{number:03d}" for number in range(19, 4, -1)
    ]
    assert all(t.source.object == "charge" and t.source.payment_intent.status == "succeeded" for t in listed)
    assert len(emulator.api_requests()) - requests_before == 4  # 15 rows, 4 a page
    newest = client.v1.balance_transactions.list(params={"limit": 2, "expand": ["data.source"]})
    assert newest.data[0].source.payment_intent == live
    assert [t.id for t in newest.next_page().previous_page().data] == [t.id for t in newest.data]
    with pytest.raises(stripe.InvalidRequestError) as bad_range:
        client.v1.balance_transactions.list(params={"created": {"after": 1}})
    assert bad_range.value.param == "created[after]"


def test_five_thousand_seeded_charges_list_back_completely_and_quickly(client, emulator):
    rows = [(f"TK-{number:05d}", 895 + number % 3, "gbp", SEED_START + number) for number in range(5000)]

    started = time.monotonic()
    intents = emulator.seed_paid_charges(rows)
    seeded = time.monotonic() - started
    started = time.monotonic()
    listed = list(client.v1.balance_transactions.list(params={"limit": 100}).auto_paging_iter())
    listing = time.monotonic() - started

    assert len(intents) == len(set(intents)) == 5000
    assert len({t.id for t in listed}) == 5000
    assert [t.created for t in listed] == list(range(SEED_START + 4999, SEED_START - 1, -1))
    assert sum(t.net for t in listed) == sum(amount - card_fee(amount) for _, amount, _, _ in rows)
    intent = client.v1.payment_intents.retrieve(intents[42], params={"expand": ["latest_charge.balance_transaction"]})
    assert intent.metadata.order_reference == "TK-00042"
    assert intent.latest_charge.balance_transaction.fee == card_fee(895)
    assert seeded < 1.0 and listing < 10.0, (seeded, listing)


def test_dashboard_run_payout_button_pays_out_and_redirects_with_a_notice(client, emulator):
    emulator.seed_paid_charges([("TK-1", 1000, "gbp", SEED_START)])
    headers = {"Origin": emulator.base_url}

    response = post_form(
        emulator, "/_emulator/payouts", {"view": "dashboard", "now": str(SEED_START + TWO_DAYS)}, headers
    )
    nothing_left = post_form(emulator, "/_emulator/payouts", {"view": "dashboard"}, headers)

    assert (response.status, response.location) == (303, "/_emulator?done=paid_out")
    [payout] = client.v1.payouts.list().data
    page = request_page(emulator, "GET", response.location).body
    assert "The payout was created and paid." in page and f"<code>{payout.id}</code>" in page
    assert 'action="/_emulator/payouts"' in page and "Run a payout now</button>" in page
    assert (nothing_left.status, "no available balance" in nothing_left.body) == (400, True)


def test_the_emulator_refuses_to_listen_beyond_loopback():
    with pytest.raises(ValueError):
        StripeEmulator(host="0.0.0.0")  # noqa: S104 - the point of the test
