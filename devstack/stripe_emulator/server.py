"""The HTTP server: routes each request to the REST API, the hosted page or the emulator controls."""

from __future__ import annotations

import urllib.parse
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from devstack.stripe_emulator.api import authenticated_api_key
from devstack.stripe_emulator.constants import LOGGER, MAX_BODY_BYTES
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.forms import decoded_params
from devstack.stripe_emulator.http_base import json_bytes
from devstack.stripe_emulator.http_controls import ControlHandler
from devstack.stripe_emulator.http_pages import HostedPageHandler
from devstack.stripe_emulator.idempotency import request_fingerprint

if TYPE_CHECKING:
    from devstack.stripe_emulator.emulator import StripeEmulator


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows which emulator it serves."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: StripeEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _EmulatorRequestHandler)


class _EmulatorRequestHandler(HostedPageHandler, ControlHandler):
    """Turns HTTP requests into emulator calls; never lets a traceback escape."""

    def do_GET(self) -> None:
        """Handle GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Handle POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Handle DELETE (no route uses it, so this answers with Stripe's 404)."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        """Send the request to the API, the hosted page or the emulator controls."""
        try:
            body = self._read_body()
            if self._path.startswith("/v1/"):
                self._handle_api(method, body)
            elif self._path.startswith("/c/pay/"):
                self._handle_hosted_page(method)
            elif self._path.startswith("/_emulator/") or self._path == "/_emulator":
                self._handle_emulator_control(method, body)
            else:
                raise ApiError(404, f"Unrecognized request URL ({method}: {self._path}).")
        except ApiError as error:
            self._send_json(error.status, error.to_body())
        except Exception:  # answer in Stripe's shape rather than with a traceback
            LOGGER.exception("Unexpected error handling %s %s", method, self._path)
            message = "An unexpected error occurred in the local Stripe emulator."
            self._send_json(500, ApiError(500, message, error_type="api_error").to_body())

    def _read_body(self) -> bytes:
        """Read exactly Content-Length bytes of request body."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header.") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise ApiError(400, f"Request bodies must be between 0 and {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(length)

    # -- /v1 ---------------------------------------------------------------

    def _handle_api(self, method: str, body: bytes) -> None:
        """Authenticate, decode parameters and answer an API call."""
        api_key = authenticated_api_key(self.headers.get("Authorization"))
        # Injected failures come before anything else, so they change nothing (not even idempotency keys).
        injected = self._emulator.before_api_request(method, self._path)
        if injected is not None:
            # Like a real 5xx, ask the SDK to retry, so max_network_retries is what gets tested.
            headers = {"Stripe-Should-Retry": "true"}
            self._send_bytes(injected.status, json_bytes(injected.to_body()), "application/json", headers)
            return
        raw_params = body if method == "POST" else urllib.parse.urlsplit(self.path).query.encode()
        params = decoded_params(raw_params)
        idempotency_key = self.headers.get("Idempotency-Key")
        if method != "POST" or not idempotency_key:
            status, response = self._call_api(method, params)
            self._send_bytes(status, response, "application/json")
            return
        self._handle_idempotent_api(method, params, body, (api_key, idempotency_key))

    def _handle_idempotent_api(self, method: str, params: dict[str, Any], body: bytes, scope: tuple[str, str]) -> None:
        """Replay a stored response for a repeated key, or run and remember the call."""
        store = self._emulator.idempotency
        replay = store.begin(scope, request_fingerprint(method, self._path, body))
        if replay is not None:
            self._send_bytes(replay[0], replay[1], "application/json", {"Idempotent-Replayed": "true"})
            return
        status, response = 500, b""
        try:
            status, response = self._call_api(method, params)
        finally:
            store.finish(scope, status, response)
        self._send_bytes(status, response, "application/json", {"Idempotency-Key": scope[1]})

    def _call_api(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        """Run the API call and serialise its result or its Stripe error."""
        try:
            return 200, json_bytes(self._emulator.handle_api_request(method, self._path, params))
        except ApiError as error:
            return error.status, json_bytes(error.to_body())
