"""The REST API's front door: Bearer authentication and routing /v1 paths to their handlers."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Callable, Sequence

from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.state import EmulatorState

ApiHandler = Callable[["str | None", dict], dict]
ApiRoute = tuple[str, re.Pattern[str], ApiHandler]


def _masked_key(key: str) -> str:
    """Show only the ends of a key, as Stripe's error message does."""
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)


def authenticated_api_key(authorization: str | None) -> str:
    """Return the test secret key from a Bearer header, or raise a 401."""
    if not authorization:
        raise ApiError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    # Only test keys: a live key pointed at the emulator is a configuration mistake.
    if scheme.lower() != "bearer" or not key.startswith("sk_test_"):
        raise ApiError(401, f"Invalid API Key provided: {_masked_key(key)}")
    return key


class ApiRouter:
    """Logs each authenticated /v1 request and hands it to the route matching its method and path."""

    def __init__(self, state: EmulatorState, routes: Sequence[ApiRoute]) -> None:
        self._state = state
        self._routes = list(routes)

    def handle(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Route an authenticated /v1 request and return the JSON response body."""
        with self._state.lock:
            self._state.api_log.append((method, path))
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if route_method == method and match is not None:
                object_id = urllib.parse.unquote(match.group(1)) if pattern.groups else None
                return handler(object_id, params)
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}).")
