"""The manufacturer's client's HTTP side: one retrying session, the API's replies, and the refusals
that end a run (a key refused, a URL with no such route)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

KEY_VARIABLE = "TRACEKIT_MANUFACTURER_KEY"
URL_VARIABLE = "TRACEKIT_API_URL"
# API Gateway's 403 bodies for a path it has no route for (without, and with, an Authorization header).
NO_SUCH_ROUTE = ("Missing Authentication Token", "Authorization header requires 'Credential'")
ATTEMPTS = 4
TIMEOUT_SECONDS = (5, 30)


class Unusable(click.ClickException):
    """Nothing sensible can be done: a refused key, a wrong URL, an unreadable file (exit 2)."""

    exit_code = 2


class Unreachable(Exception):
    """The API could not be reached even after the retries."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status == 200

    def error_text(self) -> str:
        """The API's own words: `field: message` pairs for a 400, the error text otherwise."""
        body = self.body if isinstance(self.body, dict) else {}
        fields = body.get("fields")
        if isinstance(fields, dict) and fields:
            return "; ".join(f"{name}: {message}" for name, message in fields.items())
        return str(body.get("error") or body.get("message") or body.get("Message") or self.body or "no detail")[:300]


class ManufacturerApi:
    """The partner API through one session that retries what is safe to retry."""

    def __init__(self, base_url: str, key: str, backoff_seconds: float) -> None:
        self._base = base_url.rstrip("/")
        self._session = _retrying_session(key, backoff_seconds)

    def get(self, path: str, params: dict[str, Any]) -> Reply:
        return self._send("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Reply:
        # json= sets Content-Type: application/json, which the API requires even for `{}`.
        return self._send("POST", path, json=body)

    def _send(self, method: str, path: str, **kwargs: Any) -> Reply:
        try:
            response = self._session.request(method, self._base + path, timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"could not reach the API after {ATTEMPTS} attempts ({type(exc).__name__})") from None
        reply = Reply(response.status_code, _body_of(response))
        _stop_if_refused(reply)
        return reply


def _retrying_session(key: str, backoff_seconds: float) -> requests.Session:
    """Retries connection failures and gateway 502/503/504 with backoff. POSTs are retried too:
    every call of this API is idempotent, so sending one twice cannot record anything twice."""
    retry = Retry(
        total=ATTEMPTS - 1,
        connect=ATTEMPTS - 1,
        read=0,
        status=ATTEMPTS - 1,
        other=0,
        backoff_factor=backoff_seconds,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
        raise_on_status=False,  # the last 503 is reported with the API's words, not as an exception
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers.update({"Authorization": f"Bearer {key}", "Accept": "application/json"})
    return session


def _body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # a gateway's HTML error page, say
        return response.text[:300]


def _stop_if_refused(reply: Reply) -> None:
    """401/403 end the whole run: no later call can succeed with the same key."""
    if reply.status not in (401, 403):
        return
    if any(phrase in str(reply.body) for phrase in NO_SUCH_ROUTE):
        # What API Gateway answers for a path it does not have: the URL is wrong, not the key.
        raise Unusable(f"the API has no such route: check --api / {URL_VARIABLE} (HTTP {reply.status})")
    raise Unusable(
        f"the API refused the key (HTTP {reply.status}): check {KEY_VARIABLE} holds a current manufacturer key"
    )


def safe_to_send_key(url: str) -> bool:
    """https anywhere; plain http only to this machine (the local stack)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))
