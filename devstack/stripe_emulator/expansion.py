"""Response copies of stored objects: live balance transaction statuses and ``expand[]``."""

from __future__ import annotations

import copy
from typing import Any, Sequence

from devstack.stripe_emulator.checkout import CheckoutRecord
from devstack.stripe_emulator.listing import expansion_tree, list_object, paginate
from devstack.stripe_emulator.params import expand_fields, optional_string
from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.transactions import render_balance_transaction


class Expander:
    """Renders stored objects as the API shows them; ``_locked`` methods expect the state's lock held."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def retrieved_locked(self, stored: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """A response copy of one stored object, with the fields named by ``expand[]`` expanded."""
        now = self._state.now()
        return self.expand_locked(self.rendered_locked(stored, now), expansion_tree(expand_fields(params)), now)

    def expand_locked(self, response: dict[str, Any], tree: dict[str, Any], now: int) -> dict[str, Any]:
        """Replace each id field named in tree with its object, expanded further by the subtree.

        response must already be a copy. Fields that are absent, empty or not an
        id the emulator knows (a payout has no payment_intent) stay as they are.
        """
        for name, subtree in tree.items():
            value = response.get(name)
            target = self._state.object(value) if isinstance(value, str) else None
            if target is not None:
                response[name] = self.expand_locked(self.rendered_locked(target, now), subtree, now)
        return response

    def rendered_locked(self, stored: dict[str, Any], now: int) -> dict[str, Any]:
        """A copy of a stored object as the API shows it now (balance transaction statuses are live)."""
        if stored["object"] == "balance_transaction":
            return render_balance_transaction(stored, now)
        rendered = copy.deepcopy(stored)
        if stored["object"] == "dispute":
            rendered["balance_transactions"] = [
                render_balance_transaction(self._state.ledger.get(txn["id"]) or txn, now)
                for txn in stored["balance_transactions"]
            ]
        return rendered

    def list_objects(
        self, store: dict[str, dict[str, Any]], params: dict[str, Any], filter_names: Sequence[str], url: str
    ) -> dict[str, Any]:
        """List a store newest first, keeping objects whose fields equal the given filters."""
        filters = {name: value for name in filter_names if (value := optional_string(params, name)) is not None}
        with self._state.lock:
            now = self._state.now()
            objects = [self.rendered_locked(item, now) for item in reversed(store.values())]
        matching = [item for item in objects if all(item.get(name) == value for name, value in filters.items())]
        return paginate(matching, params, url)

    def expanded_session_locked(self, record: CheckoutRecord, params: dict[str, Any]) -> dict[str, Any]:
        """Copy a session, expanding line_items / payment_intent when asked."""
        session = copy.deepcopy(record.session)
        expand = expand_fields(params)
        if "line_items" in expand:
            url = f"/v1/checkout/sessions/{session['id']}/line_items"
            session["line_items"] = list_object(copy.deepcopy(record.line_items), url)
        if "payment_intent" in expand and session["payment_intent"]:
            session["payment_intent"] = copy.deepcopy(self._state.payment_intents[session["payment_intent"]])
        return session
