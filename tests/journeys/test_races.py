"""Races that cannot be won by luck. Each race releases its contenders together from a barrier,
against moto serving one request at a time (devstack.moto_server), so what decides it is
tracekit's conditional writes, as in DynamoDB; each ends with what was stored, queued and sent.

The racing calls go through the service layer (chalicelib.services with the test's `deps`, the
real adapters on moto and the Stripe emulator): each thread calls the function its route calls.
Not through chalice.test.Client: a Chalice app keeps one `current_request` for every thread (in
Lambda a container serves one request at a time), and the test client swaps `os.environ` around
each request, so two threads' requests would read each other's cookies, bodies and headers.
Everything before and after a race goes through the client, one request at a time."""

from __future__ import annotations

import contextlib
import json
import threading
from functools import partial

import pytest

from chalicelib import services
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.errors import (
    CertificateAlreadyClaimed,
    CertificateNotAccepted,
    FulfilmentConflict,
    OrderNotFound,
)
from chalicelib.domain.orders import FulfilmentState, Order, OrderState, PaymentState
from chalicelib.domain.references import new_order_reference, normalise_certificate_reference
from chalicelib.domain.throttle import ADDRESS_LIMITS, REFERENCE_LIMITS
from chalicelib.services.manufacturer import cancellations, dispatch_fulfilment
from devstack.stripe_emulator import sign_webhook_payload
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.test_email import sent
from tests.journeys.test_journey_edges import attempt_counters
from tests.journeys.test_manufacturer import DISPATCH, call, fid, free_order
from tests.journeys.test_order_journey import queued_messages
from tests.journeys.test_payment_events import SECRET, checkout, deliver, events, paid_order, stripe_sessions

ROUNDS = 3
CONFIRMING, REDELIVERING = 20, 10


@pytest.fixture
def holders(deps):
    """A paid and a free certificate for each round (a certificate orders once)."""
    load_register(
        deps,
        *[register_row(f"FA/100{n}", "SW1A 2AA") for n in range(1, ROUNDS + 1)],
        *[register_row(f"FA/{2000 + n}", "SW1A 2AA", free_kit="yes") for n in range(ROUNDS)],
    )
    return deps


def at_once(*calls) -> list:
    """Each call on its own thread, all let go together; each one's result or the exception it
    raised, in the order given."""
    barrier, outcomes = threading.Barrier(len(calls)), [None] * len(calls)

    def run(number: int, call) -> None:
        barrier.wait()
        try:
            outcomes[number] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test asserts on
            outcomes[number] = exc

    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a contender never finished"
    return outcomes


class WritesTogether:
    """The orders adapter, with each contender's first save held until every contender has come to
    its own: all of them have read the order and decided before any writes, and the writes go
    together. The race is then met where two Lambdas meet it, at the save's condition on the
    order's version, instead of one contender finishing before the other has read. A save that
    is retried after losing goes straight through."""

    def __init__(self, orders, contenders: int):
        self._orders = orders
        self._barrier = threading.Barrier(contenders, timeout=20)
        self._held = threading.local()

    def save(self, before, after, effects=frozenset(), mail_held_until=None):
        if not getattr(self._held, "once", False):
            self._held.once = True
            self._barrier.wait()
        return self._orders.save(before, after, effects, mail_held_until)

    def __getattr__(self, name):
        return getattr(self._orders, name)


@contextlib.contextmanager
def writes_together(deps, contenders: int):
    real = deps.orders
    deps.orders = WritesTogether(real, contenders)
    try:
        yield
    finally:
        deps.orders = real


def changes(order: Order, starting: str) -> list[str]:
    return [entry.change for entry in order.history if entry.change.startswith(starting)]


def test_twenty_simultaneous_confirmations_of_one_certificate_make_one_order(
    client, holders, stripe_emulator, settings
):
    """Twenty holders' journeys, each past the certificate check with the same certificate and its
    own delivery details and order reference, confirm at once: one order, one claim, one Checkout
    Session; once paid, one fulfilment message."""
    for number in range(1, ROUNDS + 1):
        checked = services.check_certificate(f"FA/100{number}", "SW1A 2AA", holders)
        journeys = [
            (parse_delivery_details(delivery_form(full_name=f"Holder {n}")), new_order_reference())
            for n in range(CONFIRMING)
        ]
        outcomes = at_once(*[partial(services.confirm_order, checked, d, r, holders) for d, r in journeys])
        [placed] = [o for o in outcomes if isinstance(o, services.PlacedOrder)]
        assert [type(o) for o in outcomes].count(CertificateAlreadyClaimed) == CONFIRMING - 1
        assert holders.register.find(checked.certificate_key).kits_claimed == 1
        assert stored_orders(holders, [r for _, r in journeys]) == [placed.reference]
        assert len(stripe_sessions(stripe_emulator)) == number  # this round's one, and each earlier round's

        session_id = placed.checkout_url.rsplit("/", 1)[-1]
        history = [e.change for e in holders.orders.get(placed.reference).history]
        assert history == ["placed an order for £8.95", f"opened checkout session {session_id}"]
        stripe_emulator.pay(session_id)
        deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])
        assert [m["order_reference"] for m in queued_messages(settings)] == [placed.reference]


def stored_orders(deps, references: list[str]) -> list[str]:
    found = []
    for reference in references:
        try:
            found.append(deps.orders.get(reference).reference)
        except OrderNotFound:
            pass
    return found


def test_two_different_dispatches_of_one_fulfilment_at_once_record_one(client, holders, token, settings):
    """The manufacturer reports one kit posted twice at once, with different tracking references:
    one report is recorded and answered 200, the other refused as a conflict (409 from the API,
    which answers it so again afterwards), and the holder gets one dispatch email."""
    for number in range(ROUNDS):
        reference = free_order(holders, number)
        reports = [{**DISPATCH, "tracking_reference": f"RM{number}{side}GB"} for side in "AB"]
        with writes_together(holders, len(reports)):
            outcomes = at_once(*[partial(dispatch_fulfilment, fid(reference), r, "maker", holders) for r in reports])
        [winner] = [reports[n] for n, o in enumerate(outcomes) if isinstance(o, Order)]
        [loser] = [reports[n] for n, o in enumerate(outcomes) if isinstance(o, FulfilmentConflict)]

        order = holders.orders.get(reference)
        assert (order.fulfilment, order.dispatch.tracking_reference) == (
            FulfilmentState.DISPATCHED,
            winner["tracking_reference"],
        )
        assert changes(order, "dispatched by") == [f"dispatched by Royal Mail ({winner['tracking_reference']})"]
        path = f"/fulfilment-orders/{fid(reference)}/dispatch"
        assert call(client, token, "POST", path, loser)[0] == 409
        assert call(client, token, "POST", path, winner)[0] == 200
        dispatch_mails = [m for m in sent(settings) if m["subject"].endswith(f"on its way ({reference})")]
        assert len(dispatch_mails) == 1 and winner["tracking_reference"] in dispatch_mails[0]["body"]


def test_a_refund_racing_a_dispatch_ends_with_money_and_order_agreeing(client, holders, stripe_emulator, token):
    """An operator's full refund and the manufacturer's dispatch at once. Either is right first,
    and the order must say which: a refund first cancels the kit and the dispatch is refused (the
    manufacturer is told not to send it); a dispatch first keeps the kit, which has gone, and the
    refund is recorded against it. Stripe's refund and the order's always agree."""
    for number in range(1, ROUNDS + 1):
        _, paid = paid_order(client, holders, stripe_emulator, f"FA/100{number}")
        with writes_together(holders, 2):
            refund, dispatched = at_once(
                partial(services.refund_order, paid.reference, None, "holder asked", "alice", holders),
                partial(dispatch_fulfilment, paid.fulfilment_id, DISPATCH, "kit-maker", holders),
            )
        assert isinstance(refund, Order), refund
        order = holders.orders.get(paid.reference)
        money = holders.payments.money_view(order.payment_intent_id)
        assert (order.payment, order.refunded_pence, money.amount_refunded) == (PaymentState.REFUNDED, 895, 895)
        cancelled = [c.order_reference for c in cancellations(None, None, holders).items]
        if isinstance(dispatched, FulfilmentConflict):
            assert "cancelled because the order was refunded" in str(dispatched)
            assert (order.state, order.fulfilment, order.dispatch) == (
                OrderState.CANCELLED,
                FulfilmentState.CANCELLED,
                None,
            )
            assert paid.reference in cancelled
        else:
            assert isinstance(dispatched, Order), dispatched
            assert (order.state, order.fulfilment, order.dispatch.kit_code) == (
                OrderState.CONFIRMED,
                FulfilmentState.DISPATCHED,
                DISPATCH["kit_code"],
            )
            assert paid.reference not in cancelled
        assert len([e for e in order.history if e.actor == "operator:alice"]) == 1
        assert len(changes(order, "dispatched by")) == (0 if isinstance(dispatched, FulfilmentConflict) else 1)
        deliver(client, events(stripe_emulator, "charge.refunded")[-1])  # Stripe's news of it, after the race
        assert holders.orders.get(paid.reference).history[-1].change.startswith("no change to the money")


def test_ten_simultaneous_deliveries_of_one_paid_event_pay_the_order_once(client, holders, stripe_emulator, settings):
    """Stripe delivers the same checkout.session.completed on ten connections at once (the same
    signed bytes): every delivery is answered as paid, the order is paid and released once (one
    history entry each), the manufacturer gets one message and the holder one confirmation."""
    for number in range(1, ROUNDS + 1):
        _, session_id = checkout(client, f"FA/100{number}")
        stripe_emulator.pay(session_id)
        event = events(stripe_emulator, "checkout.session.completed")[-1]
        payload = json.dumps(event).encode()
        signature = sign_webhook_payload(payload, SECRET, int(holders.clock.timestamp()))
        deliveries = [partial(services.handle_stripe_webhook, payload, signature, holders)] * REDELIVERING
        outcomes = at_once(*deliveries)
        assert outcomes == ["paid"] * REDELIVERING

        reference = event["data"]["object"]["client_reference_id"]
        order = holders.orders.get(reference)
        assert (order.state, order.payment, order.fulfilment) == (
            OrderState.CONFIRMED,
            PaymentState.PAID,
            FulfilmentState.RELEASED,
        )
        assert [e.change for e in order.history if e.stripe_event_id == event["id"]] == ["paid"]
        assert changes(order, "released") == ["released to the manufacturer"]
        assert [m["order_reference"] for m in queued_messages(settings)] == [reference]
        assert [m["subject"] for m in sent(settings)].count(f"Your property-marking kit order {reference}") == 1


GUESSING = 60  # as observed: 59 wrong postcodes and the right one, sent at once


def check_outcomes(outcomes: list, capsys) -> tuple[int, int, int]:
    """(passed, refused, refused unevaluated) of a burst of certificate checks, from what the
    holders got and the metric each refusal published."""
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    refusals = [m for m in metrics if m.get("CertificateCheckRefusals")]
    passed = [o for o in outcomes if isinstance(o, services.CheckedCertificate)]
    refused = [o for o in outcomes if isinstance(o, CertificateNotAccepted)]
    assert len(passed) + len(refused) == len(outcomes) and len(refusals) == len(refused)
    return len(passed), len(refused), sum(m["CertificateCheckLockouts"] for m in refusals)


def test_sixty_simultaneous_guesses_at_one_certificate_evaluate_only_the_limit(client, deps, settings, capsys):
    """59 wrong postcodes and the right one at once, each from its own address: exactly the
    certificate's limit are evaluated (the rest refused unevaluated, the right one among them
    unless it was one of the few), the counter stops at the limit, and afterwards the right
    answer is refused: the certificate is locked."""
    limit = REFERENCE_LIMITS.per_window
    load_register(deps, *[register_row(f"FA/500{n}", "SW1A 2AA") for n in range(ROUNDS)])
    for number in range(ROUNDS):
        reference = f"FA/500{number}"
        guesses = [f"SW1A {n % 9 + 1}{'ABDEFGHJL'[n // 9]}{'NPQRSTUWX'[n % 9]}" for n in range(GUESSING - 1)]
        postcodes = [*guesses[: GUESSING // 2], "SW1A 2AA", *guesses[GUESSING // 2 :]]
        addresses = [f"198.51.{number}.{n}" for n in range(GUESSING)]
        calls = [
            partial(services.check_certificate, reference, p, deps, a)
            for p, a in zip(postcodes, addresses, strict=True)
        ]
        capsys.readouterr()  # only this burst's metrics
        outcomes = at_once(*calls)

        passed, refused, unevaluated = check_outcomes(outcomes, capsys)
        assert GUESSING - unevaluated == limit  # evaluated
        assert passed <= 1 and refused == GUESSING - passed
        right = outcomes[GUESSING // 2]
        assert isinstance(right, CertificateNotAccepted) or passed == 1
        window = deps.keys.reference_key(normalise_certificate_reference(reference, deps.settings.reference_rules))
        assert sorted(v for k, v in attempt_counters(settings).items() if k.startswith(f"ref:{window}:")) == [
            limit,
            limit,
        ]
        with pytest.raises(CertificateNotAccepted):
            services.check_certificate(reference, "SW1A 2AA", deps, "192.0.2.1")  # locked: the right answer refused


def test_a_burst_from_one_ipv6_64_across_certificates_evaluates_only_the_address_limit(client, deps, capsys):
    """Sixty right answers at once, each for its own certificate, from sixty addresses of one IPv6
    /64: the address's limit pass, the rest are refused unevaluated; afterwards that /64 is locked
    and a neighbouring /64 is not. One round: which attempts win does not matter, only how many."""
    limit = ADDRESS_LIMITS.per_window
    references = [f"FA/6{n:03d}" for n in range(GUESSING + 1)]
    load_register(deps, *[register_row(r, "SW1A 2AA") for r in references])
    calls = [
        partial(services.check_certificate, r, "SW1A 2AA", deps, f"2001:db8:0:1:{n + 1:x}::1")
        for n, r in enumerate(references[:-1])
    ]
    capsys.readouterr()
    outcomes = at_once(*calls)

    passed, refused, unevaluated = check_outcomes(outcomes, capsys)
    assert (passed, refused, unevaluated) == (limit, GUESSING - limit, GUESSING - limit)
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate(references[-1], "SW1A 2AA", deps, "2001:db8:0:1:ffff::1")
    assert services.check_certificate(references[-1], "SW1A 2AA", deps, "2001:db8:0:2::1")
