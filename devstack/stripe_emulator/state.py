"""Everything the emulator stores, behind one lock, with the look-ups that raise Stripe's 404s."""

from __future__ import annotations

import threading
from typing import Any, Callable

from devstack.stripe_emulator.checkout import CheckoutRecord
from devstack.stripe_emulator.errors import ApiError, resource_missing
from devstack.stripe_emulator.events import EventLog
from devstack.stripe_emulator.ledger import BalanceLedger


def require(store: dict[str, dict[str, Any]], kind: str, object_id: str, param: str = "id") -> dict[str, Any]:
    """The stored object with this id, or Stripe's 404 naming kind and param."""
    found = store.get(object_id)
    if found is None:
        raise resource_missing(kind, object_id, param=param)
    return found


class EmulatorState:
    """The emulator's stores, each keyed by id in creation order, and the injected clock.

    One lock guards every store (the idempotency results included); methods
    here expect the caller to hold it.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.records: dict[str, CheckoutRecord] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self.ledger = BalanceLedger()
        self.events = EventLog(self.now)
        self.api_log: list[tuple[str, str]] = []

    def now(self) -> int:
        """Current Unix time in whole seconds, from the injectable clock."""
        return int(self.clock())

    def payment_intent(self, payment_intent_id: str, param: str = "intent") -> dict[str, Any]:
        """Look a PaymentIntent up or raise Stripe's 404."""
        return require(self.payment_intents, "payment_intent", payment_intent_id, param)

    def charge(self, charge_id: str, param: str = "id") -> dict[str, Any]:
        """Look a Charge up or raise Stripe's 404."""
        return require(self.charges, "charge", charge_id, param)

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        """Look a Dispute up or raise Stripe's 404."""
        return require(self.disputes, "dispute", dispute_id)

    def paid_charge(self, payment_intent_id: str) -> dict[str, Any]:
        """Return the Charge of a succeeded PaymentIntent, refusing one that has not been paid."""
        payment_intent = self.payment_intent(payment_intent_id, param="payment_intent")
        charge = self.charges.get(payment_intent["latest_charge"] or "")
        if charge is None:
            message = (
                f"PaymentIntent {payment_intent_id} has a status of {payment_intent['status']!r} "
                "and no successful charge yet."
            )
            raise ApiError(400, message, code="payment_intent_unexpected_state", param="payment_intent")
        return charge

    def object(self, object_id: str) -> dict[str, Any] | None:
        """The stored object with this id, of whatever kind."""
        stores = (self.charges, self.payment_intents, self.refunds, self.disputes, self.payouts)
        return self.ledger.get(object_id) or next((store[object_id] for store in stores if object_id in store), None)
