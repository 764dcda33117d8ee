"""Checkout Sessions' lifecycle: open, then complete (paid, or unpaid until a bank transfer settles) or expired."""

from __future__ import annotations

import copy
from typing import Any

from devstack.stripe_emulator.checkout import CheckoutRecord, is_awaiting_settlement
from devstack.stripe_emulator.constants import AWAITING_SETTLEMENT_STATUS
from devstack.stripe_emulator.errors import ApiError, resource_missing, session_not_open
from devstack.stripe_emulator.ids import random_id
from devstack.stripe_emulator.resources import build_charge
from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.transactions import charge_balance_transaction
from devstack.stripe_emulator.webhooks import WebhookSender


class CheckoutSessions:
    """Changes to Checkout Sessions and the PaymentIntents paying them creates.

    Methods ending in ``_locked`` expect the caller to hold the state's lock;
    the others take it. Expiry found on look-up is delivered in the background.
    """

    def __init__(self, state: EmulatorState, webhooks: WebhookSender) -> None:
        self._state = state
        self._webhooks = webhooks

    def record_locked(self, session_id: str) -> CheckoutRecord:
        """Look a session up, expiring it first if its time has run out."""
        record = self._state.records.get(session_id)
        if record is None:
            raise resource_missing("checkout.session", session_id, param="session")
        self._expire_if_overdue_locked(record)
        return record

    def open_record_locked(self, session_id: str, action: str) -> CheckoutRecord:
        """Look a session up and insist it can still be paid or expired."""
        record = self.record_locked(session_id)
        if record.session["status"] != "open":
            raise session_not_open(record.session["status"], action)
        return record

    def expire_overdue_sessions(self) -> None:
        """Expire every open session whose expires_at has passed."""
        with self._state.lock:
            for record in list(self._state.records.values()):
                self._expire_if_overdue_locked(record)

    def _expire_if_overdue_locked(self, record: CheckoutRecord) -> None:
        """Expire a session whose expires_at has passed and send the event."""
        session = record.session
        if session["status"] == "open" and self._state.now() >= session["expires_at"]:
            # Delivery happens on another thread, so holding the lock here is fine.
            self._webhooks.deliver_in_background(self._expire_locked(record))

    def _expire_locked(self, record: CheckoutRecord) -> dict[str, Any]:
        """Mark a session expired and record checkout.session.expired."""
        # Stripe drops the hosted URL once a session can no longer be paid.
        record.session.update(status="expired", url=None)
        return self._state.events.record("checkout.session.expired", record.session)

    def expire_open_session(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Expire an open session; return a copy of it and the new event."""
        with self._state.lock:
            record = self.open_record_locked(session_id, "expired")
            event = self._expire_locked(record)
            return copy.deepcopy(record.session), event

    def complete_session(self, session_id: str, *, settled: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """Complete a session, create its PaymentIntent and record checkout.session.completed.

        ``settled=False`` is a bank transfer: the session completes but stays
        unpaid until settle_async, exactly as Stripe reports delayed payments.
        """
        with self._state.lock:
            record = self.open_record_locked(session_id, "paid")
            payment_intent = self._create_payment_intent_locked(record, settled=settled)
            customer_email = record.session["customer_email"]
            record.session.update(
                status="complete",
                payment_status="paid" if settled else "unpaid",
                payment_intent=payment_intent["id"],
                customer_details={"email": customer_email} if customer_email else None,
                url=None,
            )
            event = self._state.events.record("checkout.session.completed", record.session)
            return copy.deepcopy(record.session), event

    def _create_payment_intent_locked(self, record: CheckoutRecord, *, settled: bool = True) -> dict[str, Any]:
        """Store the PaymentIntent that paying a session creates: succeeded, or processing if not settled."""
        session = record.session
        payment_intent = {
            "id": random_id("pi_test_"),
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0,
            "created": self._state.now(),
            "currency": session["currency"],
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(record.payment_intent_metadata),
            "status": AWAITING_SETTLEMENT_STATUS,
        }
        self._state.payment_intents[payment_intent["id"]] = payment_intent
        if settled:
            # Card payments settle at once; both paths create the Charge the same way.
            self._settle_payment_intent_locked(payment_intent)
        return payment_intent

    def _settle_payment_intent_locked(self, payment_intent: dict[str, Any]) -> None:
        """Mark a PaymentIntent succeeded and store the Charge its latest_charge names."""
        payment_intent.update(
            status="succeeded",
            amount_received=payment_intent["amount"],
            latest_charge=random_id("ch_test_"),
        )
        charge = build_charge(payment_intent, now=self._state.now(), balance_transaction=random_id("txn_test_"))
        self._state.charges[charge["id"]] = charge
        self._state.ledger.add([charge_balance_transaction(charge)])

    def settle_session(self, session_id: str, succeeded: bool) -> dict[str, Any]:
        """Settle a bank transfer either way and record the matching async_payment event."""
        with self._state.lock:
            record = self.record_locked(session_id)
            payment_intent = self._state.payment_intents.get(record.session["payment_intent"] or "")
            if payment_intent is None or not is_awaiting_settlement(record.session, payment_intent):
                message = f"Checkout Session {session_id} has no bank transfer waiting to settle."
                raise ApiError(400, message, code="payment_intent_unexpected_state")
            if succeeded:
                self._settle_payment_intent_locked(payment_intent)
                record.session["payment_status"] = "paid"
                return self._state.events.record("checkout.session.async_payment_succeeded", record.session)
            # The money never arrived: Stripe asks for another payment method.
            payment_intent["status"] = "requires_payment_method"
            return self._state.events.record("checkout.session.async_payment_failed", record.session)
