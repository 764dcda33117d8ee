"""Events: a snapshot of an object at the moment something happened to it, kept in creation order."""

from __future__ import annotations

import copy
from typing import Any, Callable

from devstack.stripe_emulator.constants import API_VERSION
from devstack.stripe_emulator.ids import random_id


def build_event(event_type: str, data_object: dict[str, Any], *, now: int) -> dict[str, Any]:
    """An event holding a snapshot of data_object as it is right now."""
    return {
        "id": random_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": copy.deepcopy(data_object)},
    }


class EventLog:
    """Every event created so far, oldest first. Not thread-safe: the emulator's lock guards it."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._events: dict[str, dict[str, Any]] = {}

    def record(self, event_type: str, data_object: dict[str, Any]) -> dict[str, Any]:
        """Store and return an event holding a snapshot of data_object."""
        event = build_event(event_type, data_object, now=self._now())
        self._events[event["id"]] = event
        return event

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored event with this id, if any (not a copy)."""
        return self._events.get(event_id)

    def oldest_first(self) -> list[dict[str, Any]]:
        """The stored events, oldest first (not copies)."""
        return list(self._events.values())

    def newest_first(self) -> list[dict[str, Any]]:
        """The stored events, newest first (not copies)."""
        return list(reversed(self._events.values()))
