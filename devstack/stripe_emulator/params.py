"""Validating decoded request parameters, with the error Stripe would give for each mistake."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Sequence

from devstack.stripe_emulator.errors import ApiError, invalid_param, missing_param


def param_name(prefix: str, key: str) -> str:
    """Name a nested parameter the way Stripe's error messages do."""
    return f"{prefix}[{key}]" if prefix else key


def optional_string(container: dict[str, Any], key: str, prefix: str = "") -> str | None:
    """Return a string parameter, or None when it is absent or blank."""
    value = container.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        name = param_name(prefix, key)
        raise invalid_param(name, f"Invalid string: {name} must be a string.")
    return value


def required_string(container: dict[str, Any], key: str, prefix: str = "") -> str:
    """Return a string parameter that must be present."""
    value = optional_string(container, key, prefix)
    if value is None:
        raise missing_param(param_name(prefix, key))
    return value


def required_object(container: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
    """Return a nested-object parameter that must be present."""
    value = container.get(key)
    if value is None or value == "":
        raise missing_param(param_name(prefix, key))
    if not isinstance(value, dict):
        name = param_name(prefix, key)
        raise invalid_param(name, f"Invalid object: {name} must be an object.")
    return value


def parse_integer(value: Any, name: str, *, minimum: int) -> int:
    """Convert a form string to an int, as Stripe does for integer fields."""
    if not isinstance(value, str) or re.fullmatch(r"-?\d+", value) is None:
        raise ApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name)
    number = int(value)
    if number < minimum:
        message = f"This value must be greater than or equal to {minimum}."
        raise ApiError(400, message, code="parameter_invalid_integer", param=name)
    return number


def required_integer(container: dict[str, Any], key: str, prefix: str, *, minimum: int) -> int:
    """Return an integer parameter that must be present."""
    if container.get(key) in (None, ""):
        raise missing_param(param_name(prefix, key))
    return parse_integer(container[key], param_name(prefix, key), minimum=minimum)


def metadata_param(container: dict[str, Any], key: str, prefix: str = "") -> dict[str, str]:
    """Return a metadata map of strings (absent means empty)."""
    value = container.get(key)
    if value is None or value == "":
        return {}
    if isinstance(value, list):
        # Keys "0", "1", ... decode as a list; metadata is always a map, so undo that.
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise invalid_param(param_name(prefix, key), "Invalid metadata: values must be strings.")
    # Stripe treats an empty value as "unset this key".
    return {name: item for name, item in value.items() if item != ""}


def url_param(container: dict[str, Any], key: str, *, required: bool) -> str | None:
    """Return an absolute http(s) URL parameter."""
    value = required_string(container, key) if required else optional_string(container, key)
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value)
    # Control characters would let a URL smuggle headers into our 303 redirect.
    has_control_characters = any(ord(character) < 33 for character in value)
    if parts.scheme not in ("http", "https") or not parts.netloc or has_control_characters:
        raise invalid_param(key, "Not a valid URL")
    return value


def currency_param(price_data: dict[str, Any], prefix: str) -> str:
    """Return a lower-case three-letter ISO currency code."""
    currency = required_string(price_data, "currency", prefix).lower()
    if re.fullmatch(r"[a-z]{3}", currency) is None:
        raise invalid_param(param_name(prefix, "currency"), f"Invalid currency: {currency}")
    return currency


def customer_email_param(params: dict[str, Any]) -> str | None:
    """Return the optional customer_email, rejecting obviously invalid ones."""
    email = optional_string(params, "customer_email")
    if email is not None and re.fullmatch(r"[^@\s]+@[^@\s]+", email) is None:
        raise invalid_param("customer_email", "Invalid email address.")
    return email


def payment_method_types_param(params: dict[str, Any]) -> list[str]:
    """Return payment_method_types, defaulting to card as Stripe effectively does."""
    value = params.get("payment_method_types")
    if value is None or value == "":
        return ["card"]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        message = "Invalid array: payment_method_types must be a list of strings."
        raise invalid_param("payment_method_types", message)
    return value


def expand_fields(params: dict[str, Any]) -> set[str]:
    """Return the set of fields the caller asked to expand."""
    value = params.get("expand")
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def optional_amount(params: dict[str, Any]) -> int | None:
    """Return an optional positive ``amount`` in pence (absent or blank means None)."""
    if params.get("amount") in (None, ""):
        return None
    return parse_integer(params["amount"], "amount", minimum=1)


def choice_param(params: dict[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    """Return an optional string parameter that must be one of allowed."""
    value = optional_string(params, key)
    if value is not None and value not in allowed:
        raise invalid_param(key, f"Invalid {key}: must be one of {', '.join(allowed)}.")
    return value


def required_choice(params: dict[str, Any], key: str, allowed: Sequence[str]) -> str:
    """Return a parameter that must be present and one of allowed."""
    value = choice_param(params, key, allowed)
    if value is None:
        raise missing_param(key)
    return value
