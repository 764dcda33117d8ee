"""The request handler's common ground: which emulator it serves, responses, and logging without input."""

from __future__ import annotations

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.constants import LOGGER
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.ids import random_id

if TYPE_CHECKING:
    from devstack.stripe_emulator.emulator import StripeEmulator
    from devstack.stripe_emulator.server import EmulatorHTTPServer


def json_bytes(body: dict[str, Any]) -> bytes:
    """Serialise a response body the way Stripe formats it."""
    return json.dumps(body, indent=2).encode()


class EmulatorHandlerBase(BaseHTTPRequestHandler):
    """Sends complete responses with a Stripe-style Request-Id; never logs query strings or bodies."""

    server: EmulatorHTTPServer
    server_version = "StripeEmulator/1.0"

    @property
    def _emulator(self) -> StripeEmulator:
        return self.server.emulator

    @property
    def _path(self) -> str:
        """The request path without its query string."""
        # http.server may report a malformed request before it has parsed a path.
        return urllib.parse.urlsplit(getattr(self, "path", "") or "").path

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        """Send a JSON response."""
        self._send_bytes(status, json_bytes(body), "application/json")

    def _send_html(self, status: int, page: str) -> None:
        """Send an HTML page."""
        self._send_bytes(status, page.encode(), "text/html; charset=utf-8")

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Send a complete response with a Stripe-style Request-Id."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", random_id("req_", 14))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, etc.) in Stripe's JSON shape."""
        self.close_connection = True
        self._send_json(code, ApiError(code, message or "Malformed HTTP request.").to_body())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path and status only: query strings and bodies may hold emails."""
        LOGGER.info("%s %s -> %s", self.command, self._path, int(code) if str(code).isdigit() else code)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep http.server's own messages, but without arguments that may echo input."""
        LOGGER.debug("http.server: %s", format)
