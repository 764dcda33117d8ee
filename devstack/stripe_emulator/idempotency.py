"""Idempotency-Key handling: replaying a successful POST, refusing a reused key with other parameters."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.webhooks import is_successful_delivery


@dataclass
class _IdempotentResult:
    """A request seen under one Idempotency-Key; status/body stay None while in flight."""

    fingerprint: str
    status: int | None = None
    body: bytes | None = None


class IdempotencyStore:
    """Remembers successful POST responses per (API key, Idempotency-Key)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._results: dict[tuple[str, str], _IdempotentResult] = {}

    def begin(self, scope: tuple[str, str], fingerprint: str) -> tuple[int, bytes] | None:
        """Reserve the key, or return the stored response to replay."""
        with self._lock:
            result = self._results.get(scope)
            if result is None:
                self._results[scope] = _IdempotentResult(fingerprint)
                return None
            if result.fingerprint != fingerprint:
                raise _idempotency_mismatch(scope[1])
            if result.status is None or result.body is None:
                raise _idempotency_in_flight(scope[1])
            return result.status, result.body

    def finish(self, scope: tuple[str, str], status: int, body: bytes) -> None:
        """Store a 2xx response for replay; forget anything else so the key can be retried."""
        with self._lock:
            if is_successful_delivery(status):
                self._results[scope].status = status
                self._results[scope].body = body
            else:
                # Like Stripe, failed validation saves nothing, so a corrected retry works.
                self._results.pop(scope, None)


def _idempotency_mismatch(key: str) -> ApiError:
    """Build Stripe's error for reusing a key with different parameters."""
    message = (
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request."
    )
    return ApiError(400, message, error_type="idempotency_error")


def _idempotency_in_flight(key: str) -> ApiError:
    """Build the 409 for a concurrent request using the same key (the SDK retries 409s)."""
    message = (
        f"There is currently another in-progress request using this Idempotent Key: '{key}'. Please try again later."
    )
    return ApiError(409, message, error_type="invalid_request_error", code="idempotency_key_in_use")


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Identify a request's parameters so a reused key can be compared."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
