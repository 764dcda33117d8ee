"""Fault injection: failing or slowing the next authenticated /v1 requests, to rehearse outages."""

from __future__ import annotations

import threading

from devstack.stripe_emulator.constants import INJECTED_FAILURE_MESSAGE
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.state import EmulatorState


class FaultInjector:
    """How many upcoming /v1 requests to fail or slow down, and how."""

    def __init__(self, state: EmulatorState, stopping: threading.Event) -> None:
        self._state = state
        self._stopping = stopping
        self._failures_remaining = 0
        self._failure_status = 500
        self._delays_remaining = 0
        self._delay_seconds = 0.0

    def fail_next(self, count: int, status: int) -> None:
        """Make the next count requests fail with status (replacing any earlier setting)."""
        if count < 0:
            raise ValueError("count must not be negative")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._state.lock:
            self._failures_remaining = count
            self._failure_status = status

    def delay_next(self, count: int, seconds: float) -> None:
        """Make the next count requests wait seconds (replacing any earlier setting)."""
        if count < 0 or seconds < 0:
            raise ValueError("count and seconds must not be negative")
        with self._state.lock:
            self._delays_remaining = count
            self._delay_seconds = seconds

    def before_api_request(self, method: str, path: str) -> ApiError | None:
        """Apply any injected delay, then return the injected failure for this request, if any."""
        with self._state.lock:
            delay = self._delay_seconds if self._delays_remaining > 0 else 0.0
            self._delays_remaining = max(self._delays_remaining - 1, 0)
        if delay:
            self._stopping.wait(delay)  # returns early if the emulator is stopping
        with self._state.lock:
            if self._failures_remaining <= 0:
                return None
            self._failures_remaining -= 1
            # Counted here because the request never reaches the API's router.
            self._state.api_log.append((method, path))
            return ApiError(self._failure_status, INJECTED_FAILURE_MESSAGE, error_type="api_error")
