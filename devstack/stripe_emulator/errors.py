"""Stripe-shaped API errors and the builders for the ones Stripe returns most."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Stripe-shaped API error, rendered as ``{"error": {...}}`` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body Stripe would send for this error."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing_param(name: str) -> ApiError:
    """Build the error Stripe returns when a required parameter is absent."""
    return ApiError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def invalid_param(name: str, message: str) -> ApiError:
    """Build the error Stripe returns when a parameter has a bad value."""
    return ApiError(400, message, code="parameter_invalid", param=name)


def resource_missing(kind: str, object_id: str, param: str = "id") -> ApiError:
    """Build the 404 Stripe returns for an id it does not know."""
    return ApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def session_not_open(status: str, action: str) -> ApiError:
    """Build the error for acting on a session that is already complete or expired."""
    message = (
        f'Only Checkout Sessions with a status in ["open"] can be {action}. '
        f"This Checkout Session has a status of {status!r}."
    )
    return ApiError(400, message, code="checkout_session_not_open")
