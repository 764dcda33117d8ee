"""Stripe's list envelope, cursor pagination, range filters and ``expand[]`` paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from devstack.stripe_emulator.constants import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, RANGE_OPERATORS
from devstack.stripe_emulator.errors import invalid_param
from devstack.stripe_emulator.params import optional_string, parse_integer


def list_object(items: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    """Wrap items in Stripe's list envelope."""
    return {"object": "list", "data": items, "has_more": has_more, "url": url}


def page_limit(params: dict[str, Any]) -> int:
    """Return the ``limit`` parameter: 1 to 100, default 10."""
    limit = DEFAULT_LIST_LIMIT
    if params.get("limit") not in (None, ""):
        limit = parse_integer(params["limit"], "limit", minimum=1)
    if limit > MAX_LIST_LIMIT:
        raise invalid_param("limit", f"This value must be less than or equal to {MAX_LIST_LIMIT}.")
    return limit


def paginate(newest_first: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Apply Stripe's ``limit`` / ``starting_after`` cursor pagination."""
    limit = page_limit(params)
    start = 0
    cursor = optional_string(params, "starting_after")
    if cursor is not None:
        ids = [item["id"] for item in newest_first]
        if cursor not in ids:
            raise invalid_param("starting_after", f"No such object: '{cursor}'")
        start = ids.index(cursor) + 1
    page = newest_first[start : start + limit]
    return list_object(page, url, has_more=start + limit < len(newest_first))


@dataclass(frozen=True)
class RangeFilter:
    """A Stripe range filter (``created[gte]=...&created[lt]=...``) as inclusive bounds."""

    lowest: int | None = None
    highest: int | None = None

    def matches(self, value: int) -> bool:
        """True when value lies within the bounds."""
        return (self.lowest is None or value >= self.lowest) and (self.highest is None or value <= self.highest)


def parse_range_filter(params: dict[str, Any], key: str) -> RangeFilter | None:
    """Read ``key`` as an exact Unix time or a dict of gt / gte / lt / lte bounds (None when absent)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        exact = parse_integer(value, key, minimum=0)
        return RangeFilter(exact, exact)
    if not isinstance(value, dict):
        raise invalid_param(key, f"Invalid {key}: must be an integer or an object of gt, gte, lt and lte.")
    unknown = sorted(set(value) - set(RANGE_OPERATORS))
    if unknown:
        raise invalid_param(f"{key}[{unknown[0]}]", f"Received unknown parameter: {key}[{unknown[0]}]")
    bounds = {operator: parse_integer(bound, f"{key}[{operator}]", minimum=0) for operator, bound in value.items()}
    lows = [bounds[op] + (op == "gt") for op in ("gt", "gte") if op in bounds]
    highs = [bounds[op] - (op == "lt") for op in ("lt", "lte") if op in bounds]
    return RangeFilter(max(lows) if lows else None, min(highs) if highs else None)


def expansion_tree(paths: Iterable[str], prefix: str = "") -> dict[str, Any]:
    """Turn expand paths (those starting with prefix) into a tree of fields to expand.

    ``["data.source.payment_intent"]`` with prefix ``"data."`` gives
    ``{"source": {"payment_intent": {}}}``: expanding a field implies expanding its parents.
    """
    tree: dict[str, Any] = {}
    for path in paths:
        if not path.startswith(prefix) or path == prefix:
            continue
        node = tree
        for segment in path[len(prefix) :].split("."):
            node = node.setdefault(segment, {})
    return tree
