"""A thin stand-in for a browser over chalice.test.Client: form posts and the journey cookie."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode, urlsplit

from devstack.stripe_emulator import sign_webhook_payload

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class Browser:
    """Keeps the journey cookie and, like a real page, sends back the form token it was given."""

    def __init__(self, client):
        self.client = client
        self.cookie: str | None = None
        self.csrf: str | None = None

    def get(self, path: str):
        return self._remember(self.client.http.get(path, headers=self._headers({})))

    def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None):
        if self.csrf is None:  # as a person would: open the form before sending it
            self.get(path)
        body = urlencode({**fields, "csrf_token": self.csrf or ""})
        return self._remember(
            self.client.http.post(path, headers=self._headers({**FORM, **(headers or {})}), body=body)
        )

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Cookie": self.cookie} if self.cookie else dict(headers)

    def _remember(self, response):
        token = TOKEN.search(response.body.decode("utf-8", errors="replace"))
        if token:
            self.csrf = token.group(1)
        set_cookie = response.headers.get("Set-Cookie") or response.headers.get("set-cookie")
        if set_cookie:
            pair = set_cookie.split(";", 1)[0]
            self.cookie = None if pair.split("=", 1)[1] == "" else pair
        return response


def location_path(response) -> str:
    parts = urlsplit(response.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def signed_now() -> int:
    """Stripe signs at delivery, on the test's one clock (the app's)."""
    from chalicelib import bootstrap

    return int(bootstrap.dependencies().clock().timestamp())


def deliver_webhook(client, event: dict, secret: str, signature: str | None = None):
    """Post an event to the app's webhook as Stripe does: raw JSON bytes and a Stripe-Signature."""
    body = json.dumps(event).encode()
    header = signature if signature is not None else sign_webhook_payload(body, secret, signed_now())
    return client.http.post(
        "/stripe/webhook",
        body=body,
        headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
    )
