"""The REST API for Checkout Sessions, Events and PaymentIntents."""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

from devstack.stripe_emulator.api import ApiRoute
from devstack.stripe_emulator.checkout import build_checkout_record
from devstack.stripe_emulator.errors import resource_missing
from devstack.stripe_emulator.expansion import Expander
from devstack.stripe_emulator.listing import paginate
from devstack.stripe_emulator.params import optional_string
from devstack.stripe_emulator.sessions import CheckoutSessions
from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.webhooks import WebhookSender


class CheckoutApi:
    """Handlers for /v1/checkout/sessions, /v1/events and /v1/payment_intents."""

    def __init__(
        self,
        state: EmulatorState,
        sessions: CheckoutSessions,
        webhooks: WebhookSender,
        expander: Expander,
        base_url: Callable[[], str],
    ) -> None:
        self._state = state
        self._sessions = sessions
        self._webhooks = webhooks
        self._expander = expander
        self._base_url = base_url

    def routes(self) -> list[ApiRoute]:
        """This API's (method, path pattern, handler) routes."""
        return [
            ("POST", re.compile(r"/v1/checkout/sessions"), self.create_session),
            ("GET", re.compile(r"/v1/checkout/sessions"), self.list_sessions),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self.retrieve_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)/line_items"), self.list_line_items),
            ("POST", re.compile(r"/v1/checkout/sessions/([^/]+)/expire"), self.expire_session),
            ("GET", re.compile(r"/v1/events"), self.list_events),
            ("GET", re.compile(r"/v1/events/([^/]+)"), self.retrieve_event),
            ("GET", re.compile(r"/v1/payment_intents/([^/]+)"), self.retrieve_payment_intent),
        ]

    def create_session(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/checkout/sessions."""
        record = build_checkout_record(params, now=self._state.now(), base_url=self._base_url())
        with self._state.lock:
            self._state.records[record.session["id"]] = record
            return self._expander.expanded_session_locked(record, params)

    def list_sessions(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions, newest first, filterable by status and payment_intent."""
        filters = {name: params[name] for name in ("status", "payment_intent") if params.get(name)}
        with self._state.lock:
            self._sessions.expire_overdue_sessions()
            sessions = [copy.deepcopy(record.session) for record in reversed(self._state.records.values())]
        matching = [session for session in sessions if all(session.get(k) == v for k, v in filters.items())]
        return paginate(matching, params, "/v1/checkout/sessions")

    def retrieve_session(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions/:id."""
        with self._state.lock:
            return self._expander.expanded_session_locked(self._sessions.record_locked(str(session_id)), params)

    def list_line_items(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions/:id/line_items."""
        with self._state.lock:
            items = copy.deepcopy(self._sessions.record_locked(str(session_id)).line_items)
        return paginate(items, params, f"/v1/checkout/sessions/{session_id}/line_items")

    def expire_session(self, session_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/checkout/sessions/:id/expire."""
        session, event = self._sessions.expire_open_session(str(session_id))
        # The caller here is the app itself; making it wait for its own webhook
        # would deadlock a single-threaded server, so deliver like Stripe: async.
        self._webhooks.deliver_in_background(event)
        return session

    def list_events(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events, newest first, filterable by type."""
        event_type = optional_string(params, "type")
        with self._state.lock:
            events = [copy.deepcopy(event) for event in self._state.events.newest_first()]
        matching = [event for event in events if event_type in (None, event["type"])]
        return paginate(matching, params, "/v1/events")

    def retrieve_event(self, event_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/events/:id."""
        with self._state.lock:
            event = self._state.events.get(str(event_id))
            if event is None:
                raise resource_missing("event", str(event_id))
            return copy.deepcopy(event)

    def retrieve_payment_intent(self, intent_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payment_intents/:id, expanding latest_charge (and latest_charge.balance_transaction)."""
        with self._state.lock:
            return self._expander.retrieved_locked(self._state.payment_intent(str(intent_id)), params)
