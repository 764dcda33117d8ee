"""The emulator: the buyer's actions and the test controls, over its composed parts."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, Sequence

from devstack.stripe_emulator.api import ApiRouter
from devstack.stripe_emulator.api_checkout import CheckoutApi
from devstack.stripe_emulator.api_money import MoneyApi
from devstack.stripe_emulator.checkout import CheckoutRecord
from devstack.stripe_emulator.constants import (
    DEFAULT_RETRY_DELAYS,
    DEFAULT_SWEEP_INTERVAL_SECONDS,
    DEFAULT_WEBHOOK_SECRET,
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    LOOPBACK_HOSTS,
)
from devstack.stripe_emulator.errors import ApiError, resource_missing
from devstack.stripe_emulator.expansion import Expander
from devstack.stripe_emulator.faults import FaultInjector
from devstack.stripe_emulator.idempotency import IdempotencyStore
from devstack.stripe_emulator.lifecycle import ServiceThreads
from devstack.stripe_emulator.payments import MoneyMovements
from devstack.stripe_emulator.resources import RefundRequest
from devstack.stripe_emulator.sessions import CheckoutSessions
from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.views import DashboardView, build_dashboard_view
from devstack.stripe_emulator.webhooks import WebhookSender


def _webhook_setting(name: str, doc: str) -> property:
    """A read-write attribute kept on the webhook sender (setting webhook_url to None switches webhooks off)."""
    return property(
        lambda self: getattr(self._webhooks, name),
        lambda self, value: setattr(self._webhooks, name, value),
        doc=doc,
    )


class StripeEmulator:
    """An in-process fake of Stripe Checkout, served over HTTP for the real SDK.

    ``pay``, ``decline`` and ``expire`` raise :class:`ApiError` (404 for an
    unknown session, 400 for one that is no longer open). The other test
    controls (``pay_async``, ``settle_async``, ``refund``, ``dispute`` and
    ``close_dispute``) raise :class:`ApiError` in the same way, with the code
    Stripe would use.

    Every charge, refund and dispute gets its balance transaction (UK card
    pricing), and ``run_payout`` pays out whatever has become available.

    A failed webhook delivery is retried once after each of ``retry_delays``
    seconds, so the default (1, 2, 4, 8) gives up after 5 attempts in all.
    ``clock`` is injectable so tests can move time past ``expires_at`` (and
    past ``available_on`` for payouts).
    """

    webhook_url = _webhook_setting("url", "Where signed events are POSTed (None: nowhere, events are only stored).")
    webhook_secret = _webhook_setting("secret", "The whsec_... secret webhooks are signed with.")
    webhook_timeout = _webhook_setting("timeout", "Seconds to wait for the webhook endpoint's answer.")
    retry_delays = _webhook_setting("retry_delays", "Seconds before each retry of a failed delivery.")

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 12111,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL_SECONDS,
        webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the emulator serves loopback only ({', '.join(sorted(LOOPBACK_HOSTS))}), not {host!r}")
        self.host = host
        self.port = port
        self.sweep_interval = sweep_interval
        self._clock = clock
        stopping = threading.Event()
        # One object holds every store, behind one lock that guards the idempotency results too.
        self._state = state = EmulatorState(clock)
        self._webhooks = WebhookSender(
            webhook_url,
            webhook_secret,
            timeout=webhook_timeout,
            retry_delays=retry_delays,
            now=state.now,
            stopping=stopping,
        )
        self._compose(stopping)

    def _compose(self, stopping: threading.Event) -> None:
        """The parts over the state: sessions, money movements, faults, idempotency, the REST API and the server."""
        state = self._state
        self._sessions = CheckoutSessions(state, self._webhooks)
        self._money = MoneyMovements(state)
        self._faults = FaultInjector(state, stopping)
        self.idempotency = IdempotencyStore(state.lock)
        expander = Expander(state)
        checkout = CheckoutApi(state, self._sessions, self._webhooks, expander, lambda: self.base_url)
        money = MoneyApi(state, self._money, self._webhooks, expander)
        self._api = ApiRouter(state, [*checkout.routes(), *money.routes()])
        self._service = ServiceThreads(self, stopping, self._sessions.expire_overdue_sessions)

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The emulator's root URL, with the real port once started on port 0."""
        port = self._service.bound_port or self.port
        return f"http://{self.host}:{port}"

    def start(self) -> None:
        """Start serving in daemon threads; the socket is listening on return."""
        self._service.start()

    def stop(self) -> None:
        """Stop serving, abandon pending webhook retries and free the port."""
        self._service.stop()

    def __enter__(self) -> "StripeEmulator":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- buyer actions and test controls -----------------------------------

    def pay(self, session_id: str) -> None:
        """Complete the session as if the buyer clicked Pay on the hosted page."""
        self.complete_payment(session_id)

    def decline(self, session_id: str) -> None:
        """Simulate a declined card: nothing changes and no event is sent."""
        with self._state.lock:
            self._sessions.open_record_locked(session_id, "paid")

    def pay_async(self, session_id: str) -> None:
        """Start a bank transfer as if the buyer clicked "Pay by bank transfer" on the hosted page."""
        self.complete_async_payment(session_id)

    def complete_payment(self, session_id: str) -> dict[str, Any]:
        """Pay a session, deliver the webhook, and return a copy of the paid session.

        Delivery is synchronous so the app has handled checkout.session.completed
        before the buyer lands on success_url.
        """
        session, event = self._sessions.complete_session(session_id)
        self._webhooks.deliver_now(event)
        return session

    def complete_async_payment(self, session_id: str) -> dict[str, Any]:
        """Start a bank transfer: complete the session unpaid, deliver the webhook, return a copy.

        The PaymentIntent stays ``processing`` with no Charge until settle_async.
        """
        session, event = self._sessions.complete_session(session_id, settled=False)
        self._webhooks.deliver_now(event)
        return session

    def settle_async(self, session_id: str, succeeded: bool) -> None:
        """Settle a bank transfer started by pay_async and deliver the outcome event before returning.

        Success creates the Charge and marks the session paid
        (``checkout.session.async_payment_succeeded``). Failure leaves the
        session unpaid and sends the PaymentIntent back to
        ``requires_payment_method`` (``checkout.session.async_payment_failed``).
        """
        self._webhooks.deliver_now(self._sessions.settle_session(session_id, succeeded))

    def expire(self, session_id: str) -> None:
        """Expire an open session and deliver checkout.session.expired before returning."""
        _, event = self._sessions.expire_open_session(session_id)
        self._webhooks.deliver_now(event)

    def expire_overdue_sessions(self) -> None:
        """Expire every open session whose expires_at has passed."""
        self._sessions.expire_overdue_sessions()

    def refund(self, payment_intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund a payment the way the Stripe dashboard does; return a copy of the Refund.

        ``amount`` defaults to everything not yet refunded. This shares its code
        with POST /v1/refunds, so it sends the same two events (``refund.created``
        then ``charge.refunded``), delivered before returning.
        """
        refund, events = self._money.create_refund(RefundRequest(payment_intent=payment_intent_id, amount=amount))
        self._webhooks.deliver_all_now(events)
        return refund

    def dispute(self, payment_intent_id: str, amount: int | None = None, reason: str = "fraudulent") -> dict[str, Any]:
        """Open a dispute (chargeback) on a paid PaymentIntent's charge; return a copy of it.

        ``amount`` defaults to the whole charge. The charge is marked disputed and
        ``charge.dispute.created`` is delivered before returning.
        """
        dispute, event = self._money.open_dispute(payment_intent_id, amount, reason)
        self._webhooks.deliver_now(event)
        return dispute

    def close_dispute(self, dispute_id: str, won: bool) -> dict[str, Any]:
        """Close an open dispute as won or lost, deliver ``charge.dispute.closed`` and return a copy."""
        dispute, event = self._money.close_dispute(dispute_id, won)
        self._webhooks.deliver_now(event)
        return dispute

    def make_balance_available(self) -> int:
        """Make today's pending balance available now, so a payout can be run at once (Stripe holds
        funds for about two days, AVAILABILITY_DELAY_SECONDS); how many transactions it moved."""
        return self._money.make_balance_available()

    def run_payout(self, now: int | None = None) -> dict[str, Any] | None:
        """Pay out every balance transaction available at now (default: the clock) and not yet paid out.

        The payout is for the sum of their nets, is ``paid`` at once and gets its
        own ``payout`` balance transaction; ``payout.paid`` is delivered before
        returning a copy. Returns None, doing nothing, when nothing is available
        or the sum is not positive. With several currencies only the oldest
        transaction's currency is paid out; call again for the others.
        """
        created = self._money.create_payout(now)
        if created is None:
            return None
        payout, event = created
        self._webhooks.deliver_now(event)
        return payout

    def seed_paid_charges(self, items: Sequence[tuple[str, int, str, int]]) -> list[str]:
        """Store succeeded payments directly, for benchmarks; return their PaymentIntent ids in order.

        Each item is ``(order_reference, amount, currency, created_unix)`` and gets
        a succeeded PaymentIntent (metadata ``order_reference``), its Charge and the
        charge's balance transaction, all created at created_unix. No checkout
        session, no events and no HTTP: 100,000 rows take about a second.
        """
        return self._money.seed_paid_charges(items)

    def fail_next_requests(self, count: int, status: int = 500) -> None:
        """Make the next count authenticated /v1 requests fail with status, doing nothing else.

        Each answers ``{"error": {"type": "api_error", ...}}`` with
        ``Stripe-Should-Retry: true``, so the SDK's ``max_network_retries``
        applies. Calling again replaces the previous setting; ``count=0`` cancels it.
        """
        self._faults.fail_next(count, status)

    def delay_next_requests(self, count: int, seconds: float) -> None:
        """Make the next count authenticated /v1 requests wait seconds before being handled.

        Calling again replaces the previous setting; ``count=0`` cancels it.
        """
        self._faults.delay_next(count, seconds)

    def redeliver(self, event_id: str) -> int:
        """Send a stored event to webhook_url once more; return its status (0 = no response)."""
        with self._state.lock:
            event = self._state.events.get(event_id)
        if event is None:
            raise resource_missing("event", event_id)
        if not self.webhook_url:
            raise ApiError(400, "No webhook_url is configured, so there is nowhere to deliver the event.")
        return self._webhooks.send(event)

    # -- what the pages and tests see ----------------------------------------

    def api_requests(self) -> list[tuple[str, str]]:
        """Every authenticated API request received, as (method, path), oldest first."""
        with self._state.lock:
            return list(self._state.api_log)

    def events(self) -> list[dict[str, Any]]:
        """Every event created so far, oldest first (copies, safe to mutate)."""
        with self._state.lock:
            return copy.deepcopy(self._state.events.oldest_first())

    def checkout_view(self, session_id: str) -> CheckoutRecord:
        """A copy of one session and its line items, for rendering the hosted page."""
        with self._state.lock:
            return copy.deepcopy(self._sessions.record_locked(session_id))

    def dashboard_view(self) -> DashboardView:
        """Copies of everything the developer dashboard shows, newest first (payments and payouts capped)."""
        with self._state.lock:
            self._sessions.expire_overdue_sessions()
            return build_dashboard_view(self._state)

    # -- the HTTP layer's entry points ---------------------------------------

    def before_api_request(self, method: str, path: str) -> ApiError | None:
        """Apply any injected delay, then return the injected failure for this request, if any.

        The HTTP layer calls this for every authenticated /v1 request before it
        touches parameters or the idempotency store, so a failure has no side
        effects and a retry with the same Idempotency-Key runs for real.
        """
        return self._faults.before_api_request(method, path)

    def handle_api_request(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Route an authenticated /v1 request and return the JSON response body."""
        return self._api.handle(method, path, params)
