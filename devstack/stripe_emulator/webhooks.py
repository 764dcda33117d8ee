"""Webhook signing (exactly as Stripe signs) and delivery with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Callable, Sequence

from devstack.stripe_emulator.constants import LOGGER


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


class WebhookSender:
    """Delivers signed events to one webhook URL, retrying failures in the background.

    Never called under the emulator's lock: the app may call the emulator back
    while it handles an event. A failed delivery is retried once after each of
    ``retry_delays`` seconds; ``url`` set to None switches webhooks off, even
    for retries already waiting.
    """

    def __init__(
        self,
        url: str | None,
        secret: str,
        *,
        timeout: float,
        retry_delays: Sequence[float],
        now: Callable[[], int],
        stopping: threading.Event,
    ) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self._now = now
        self._stopping = stopping

    def deliver_now(self, event: dict[str, Any]) -> None:
        """Deliver once, synchronously; on failure retry in the background."""
        if not self.url:
            return
        if not is_successful_delivery(self.send(event)):
            self._start_delivery_thread(self._retry_delivery, event)

    def deliver_in_background(self, event: dict[str, Any]) -> None:
        """Deliver (with retries) without making the caller wait."""
        if self.url:
            self._start_delivery_thread(self.deliver_now, event)

    def deliver_all_now(self, events: list[dict[str, Any]]) -> None:
        """Deliver events one after another, in order (failed ones are retried in the background)."""
        for event in events:
            self.deliver_now(event)

    def deliver_all_in_background(self, events: list[dict[str, Any]]) -> None:
        """Deliver events in order on one background thread, so they arrive in the order created."""
        if self.url and events:
            thread = threading.Thread(
                target=self.deliver_all_now, args=(events,), name=f"webhook-{events[0]['id']}", daemon=True
            )
            thread.start()

    def _start_delivery_thread(self, target: Callable[[dict[str, Any]], None], event: dict[str, Any]) -> None:
        """Run one delivery job in a daemon thread."""
        thread = threading.Thread(target=target, args=(event,), name=f"webhook-{event['id']}", daemon=True)
        thread.start()

    def _retry_delivery(self, event: dict[str, Any]) -> None:
        """Retry a failed delivery with back-off until it succeeds or attempts run out."""
        for delay in self.retry_delays:
            if self._stopping.wait(delay) or not self.url:
                return  # the emulator stopped or webhooks were switched off
            if is_successful_delivery(self.send(event)):
                return
        LOGGER.warning("Gave up delivering %s after %d attempts", event["id"], len(self.retry_delays) + 1)

    def send(self, event: dict[str, Any]) -> int:
        """POST one signed event to the webhook URL and return the HTTP status."""
        url = self.url
        if not url:
            return 0
        payload = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_webhook_payload(payload, self.secret, self._now()),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) local-emulator",
        }
        status = post_webhook(url, payload, headers, self.timeout)
        LOGGER.info("Webhook %s %s -> %s", event["type"], event["id"], status or "no response")
        return status
