"""Fixtures for the emulator's tests: a webhook receiver, a running emulator and an SDK client for it."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Iterator

import pytest
import stripe

from devstack.stripe_emulator import StripeEmulator
from tests.integration.stripe_emulator.support import (
    TINY_RETRY_DELAYS,
    WEBHOOK_SECRET,
    WebhookReceiver,
    receiver_handler,
    stripe_client_for,
)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A local HTTP server capturing webhook posts."""
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver_handler(receiver))
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
