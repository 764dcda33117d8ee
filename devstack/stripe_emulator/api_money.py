"""The REST API for Charges, Refunds, Disputes, Balance Transactions and Payouts."""

from __future__ import annotations

import copy
import re
from typing import Any

from devstack.stripe_emulator.api import ApiRoute
from devstack.stripe_emulator.errors import resource_missing
from devstack.stripe_emulator.expansion import Expander
from devstack.stripe_emulator.ledger import TransactionFilter
from devstack.stripe_emulator.listing import expansion_tree, list_object, page_limit, paginate, parse_range_filter
from devstack.stripe_emulator.params import expand_fields, optional_string
from devstack.stripe_emulator.payments import MoneyMovements
from devstack.stripe_emulator.resources import parse_refund_request
from devstack.stripe_emulator.state import EmulatorState, require
from devstack.stripe_emulator.transactions import render_balance_transaction
from devstack.stripe_emulator.webhooks import WebhookSender


class MoneyApi:
    """Handlers for /v1/charges, /v1/refunds, /v1/disputes, /v1/balance_transactions and /v1/payouts."""

    def __init__(
        self, state: EmulatorState, money: MoneyMovements, webhooks: WebhookSender, expander: Expander
    ) -> None:
        self._state = state
        self._money = money
        self._webhooks = webhooks
        self._expander = expander

    def routes(self) -> list[ApiRoute]:
        """This API's (method, path pattern, handler) routes."""
        return [
            ("GET", re.compile(r"/v1/charges"), self.list_charges),
            ("GET", re.compile(r"/v1/charges/([^/]+)"), self.retrieve_charge),
            ("POST", re.compile(r"/v1/refunds"), self.create_refund),
            ("GET", re.compile(r"/v1/refunds"), self.list_refunds),
            ("GET", re.compile(r"/v1/refunds/([^/]+)"), self.retrieve_refund),
            ("GET", re.compile(r"/v1/disputes"), self.list_disputes),
            ("GET", re.compile(r"/v1/disputes/([^/]+)"), self.retrieve_dispute),
            ("GET", re.compile(r"/v1/balance_transactions"), self.list_balance_transactions),
            ("GET", re.compile(r"/v1/balance_transactions/([^/]+)"), self.retrieve_balance_transaction),
            ("GET", re.compile(r"/v1/payouts"), self.list_payouts),
            ("GET", re.compile(r"/v1/payouts/([^/]+)"), self.retrieve_payout),
        ]

    def _retrieve(
        self, store: dict[str, dict[str, Any]], kind: str, object_id: str | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        """GET one stored object by id, expanded as asked, or Stripe's 404."""
        with self._state.lock:
            return self._expander.retrieved_locked(require(store, kind, str(object_id)), params)

    def retrieve_charge(self, charge_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/charges/:id, expanding balance_transaction or payment_intent when asked."""
        return self._retrieve(self._state.charges, "charge", charge_id, params)

    def list_charges(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/charges, newest first, filterable by payment_intent."""
        return self._expander.list_objects(self._state.charges, params, ("payment_intent",), "/v1/charges")

    def create_refund(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/refunds."""
        refund, events = self._money.create_refund(parse_refund_request(params))
        # The caller is usually the app itself, so (as for expire) it must not wait for its own webhooks.
        self._webhooks.deliver_all_in_background(events)
        return refund

    def retrieve_refund(self, refund_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds/:id."""
        return self._retrieve(self._state.refunds, "refund", refund_id, params)

    def list_refunds(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds, newest first, filterable by payment_intent and charge."""
        return self._expander.list_objects(self._state.refunds, params, ("payment_intent", "charge"), "/v1/refunds")

    def retrieve_dispute(self, dispute_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/disputes/:id."""
        return self._retrieve(self._state.disputes, "dispute", dispute_id, params)

    def list_disputes(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/disputes, newest first, filterable by payment_intent and charge."""
        store = self._state.disputes
        return self._expander.list_objects(store, params, ("payment_intent", "charge"), "/v1/disputes")

    def list_balance_transactions(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/balance_transactions, newest first, filterable and expandable like Stripe's.

        Filters: created (exact or gt/gte/lt/lte), type, source, currency and
        payout (the transactions that payout paid out). ``expand[]=data.source``
        and ``data.source.payment_intent`` swap ids for objects.
        """
        created = parse_range_filter(params, "created")
        limit = page_limit(params)
        cursors = {name: optional_string(params, name) for name in ("starting_after", "ending_before")}
        tree = expansion_tree(expand_fields(params), "data.")
        ledger = self._state.ledger
        with self._state.lock:
            keep = self._balance_transaction_filter_locked(params)
            page, has_more = ledger.page(ledger.span(created), keep, limit, **cursors)
            now = self._state.now()
            data = [self._expander.expand_locked(render_balance_transaction(txn, now), tree, now) for txn in page]
        return list_object(data, "/v1/balance_transactions", has_more)

    def _balance_transaction_filter_locked(self, params: dict[str, Any]) -> TransactionFilter | None:
        """The filter for a balance transaction listing's equality and payout parameters (None: keep all)."""
        equal = {name: value for name in ("type", "source", "currency") if (value := optional_string(params, name))}
        payout_id = optional_string(params, "payout")
        if payout_id is not None and payout_id not in self._state.payouts:
            raise resource_missing("payout", payout_id, param="payout")
        if not equal and payout_id is None:
            return None
        payout_of = self._state.ledger.payout_of

        def keep(txn: dict[str, Any]) -> bool:
            in_payout = payout_id is None or payout_of(txn["id"]) == payout_id
            return in_payout and all(txn[name] == value for name, value in equal.items())

        return keep

    def retrieve_balance_transaction(self, txn_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/balance_transactions/:id, expanding source (and source.payment_intent) when asked."""
        with self._state.lock:
            txn = self._state.ledger.get(str(txn_id))
            if txn is None:
                raise resource_missing("balance_transaction", str(txn_id))
            return self._expander.retrieved_locked(txn, params)

    def list_payouts(self, _: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payouts, newest first, filterable by created, arrival_date and status."""
        ranges = {name: parse_range_filter(params, name) for name in ("created", "arrival_date")}
        status = optional_string(params, "status")
        tree = expansion_tree(expand_fields(params), "data.")
        with self._state.lock:
            payouts = [
                payout
                for payout in reversed(self._state.payouts.values())
                if status in (None, payout["status"])
                and all(bounds is None or bounds.matches(payout[name]) for name, bounds in ranges.items())
            ]
            listing = paginate(payouts, params, "/v1/payouts")
            now = self._state.now()
            listing["data"] = [
                self._expander.expand_locked(copy.deepcopy(payout), tree, now) for payout in listing["data"]
            ]
        return listing

    def retrieve_payout(self, payout_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/payouts/:id, expanding balance_transaction when asked."""
        return self._retrieve(self._state.payouts, "payout", payout_id, params)
