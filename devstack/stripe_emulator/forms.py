"""Decoding Stripe's bracketed form encoding (``a[b][0][c]=1``) into nested dicts and lists."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from devstack.stripe_emulator.errors import ApiError


class MalformedFormError(ValueError):
    """The request body or query string is not valid Stripe form encoding."""


_KEY_PATTERN = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT_PATTERN = re.compile(r"\[([^\[\]]*)\]")


def decode_stripe_form(encoded: str) -> dict[str, Any]:
    """Decode ``a[b][0][c]=1`` style form data into nested dicts and lists.

    Values stay strings, exactly as they arrived; the API layer converts the
    fields that Stripe defines as integers.
    """
    try:
        pairs = urllib.parse.parse_qsl(encoded, keep_blank_values=True, errors="strict", max_num_fields=1000)
    except ValueError as error:
        raise MalformedFormError(f"Could not parse the request parameters: {error}") from None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        _assign_nested_value(tree, _split_bracketed_key(key), value)
    # The top level is always a dict of parameter names, even if they are digits.
    return {key: _lists_from_indexed_dicts(value) for key, value in tree.items()}


def _split_bracketed_key(key: str) -> list[str]:
    """Split ``line_items[0][quantity]`` into ``["line_items", "0", "quantity"]``."""
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        raise MalformedFormError(f"Invalid parameter name: {key!r}.")
    return [match.group(1), *_SEGMENT_PATTERN.findall(match.group(2))]


def _assign_nested_value(tree: dict[str, Any], segments: list[str], value: str) -> None:
    """Store ``value`` at the nested position named by ``segments``."""
    node = tree
    for depth, segment in enumerate(segments):
        # An empty segment ("expand[]=x") appends, as Rails-style encoders intend.
        key = str(len(node)) if segment == "" else segment
        if depth == len(segments) - 1:
            if isinstance(node.get(key), dict):
                raise MalformedFormError(f"Parameter {segments[0]!r} is both a value and an object.")
            node[key] = value
            return
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise MalformedFormError(f"Parameter {segments[0]!r} is both a value and an object.")
        node = child


def _lists_from_indexed_dicts(node: Any) -> Any:
    """Turn ``{"0": a, "1": b}`` into ``[a, b]`` at every level below the top."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexed_dicts(value) for key, value in node.items()}
    if converted and set(converted) == {str(index) for index in range(len(converted))}:
        return [converted[str(index)] for index in range(len(converted))]
    return converted


def decoded_params(raw: bytes) -> dict[str, Any]:
    """Decode a form body or query string, turning bad input into a Stripe 400."""
    try:
        return decode_stripe_form(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "Request parameters must be UTF-8 encoded.") from None
    except MalformedFormError as error:
        raise ApiError(400, str(error)) from None
