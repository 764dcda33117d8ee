"""The journeys the sweep runs: each a list of steps, each step one actor doing one thing.

A step that is told to try again (or whose process died) is retried by its actor, as in
production: the holder presses the button again, Stripe redelivers, the kit maker's client and the
operator retry, a schedule runs again. Setup steps run with no fault and are not swept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from chalicelib import services
from chalicelib.domain.lifecycle import ERASED
from chalicelib.domain.errors import QueueUnavailable
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.services.privacy import erase_order
from tests.builders import delivery_form
from tests.crashpoints.world import EMAIL, FREE_HOLDER, PAID_HOLDER, POSTCODE, TryAgain, World

REFERENCE = re.compile(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}")
DISPATCH = {"kit_code": "SW-123456", "carrier": "Royal Mail", "tracking_reference": "RM123456789GB"}


@dataclass(frozen=True)
class Step:
    name: str
    act: Callable[[World], object]
    swept: bool = True  # False: setup, run with no fault planted


@dataclass(frozen=True)
class Journey:
    name: str
    steps: tuple[Step, ...]
    expect: Callable[[World], None] | None = None  # what this journey must end in, beyond the invariants


# -- the holder ---------------------------------------------------------------------------------
def certificate(holder: str) -> Step:
    return Step(
        f"holder checks {holder}",
        lambda w: w.holder_page("POST", "/order/certificate", {"reference": holder, "postcode": POSTCODE}),
    )


def delivery() -> Step:
    return Step("holder gives delivery", lambda w: w.holder_page("POST", "/order/delivery", delivery_form(email=EMAIL)))


def _confirm(w: World):
    response = w.holder_page("POST", "/order/confirm", {"confirm": "yes"})
    location = response.headers.get("Location", "")
    if "/checkout/" in location or location.startswith(w.emulator.base_url):
        w.notes["session"] = location.rsplit("/", 1)[-1]
    return response


def confirm() -> Step:
    return Step("holder confirms", _confirm)


def confirmation_page() -> Step:
    return Step("holder sees confirmation", lambda w: w.holder_page("GET", "/order/confirmation"))


def return_page() -> Step:
    return Step(
        "holder returns from checkout",
        lambda w: w.holder_page("GET", f"/order/payment-complete?session_id={w.notes['session']}"),
    )


def ordering(holder: str) -> tuple[Step, ...]:
    return (certificate(holder), delivery(), confirm())


# -- Stripe -----------------------------------------------------------------------------------------
def pays(how: str = "card") -> Step:
    action = {
        "card": lambda w: w.emulator.pay(w.notes["session"]),
        "bank": lambda w: w.emulator.pay_async(w.notes["session"]),
    }[how]
    return Step(f"holder pays by {how}", action)


def stripe_sends(kind: str) -> Step:
    return Step(f"stripe sends {kind}", lambda w: w.deliver(w.latest_event(kind)))


def stripe_sends_the_rest() -> Step:
    def deliver_undelivered(w: World):
        for event in w.emulator.events():
            if event["id"] not in w.delivered:
                w.deliver(event)

    return Step("stripe sends what it has not", deliver_undelivered)


def bank_settles(succeeded: bool) -> Step:
    return Step(
        f"bank transfer {'arrives' if succeeded else 'fails'}",
        lambda w: w.emulator.settle_async(w.notes["session"], succeeded),
    )


def session_expires() -> Step:
    return Step("checkout session expires", lambda w: w.emulator.expire(w.notes["session"]))


# -- the kit maker, the operator, the schedules -----------------------------------------------------
def kit_maker(action: str) -> Step:
    def act(w: World):
        fulfilment = "F-" + w.order_reference().removeprefix("TK-")
        body = {
            "dispatch": {**DISPATCH, "dispatched_at": w.clock().isoformat()},
            "reject": {"reason": "address not found"},
            "returned": {"reason": "addressee gone away"},
        }.get(action)
        response = w.manufacturer("POST", f"/fulfilment-orders/{fulfilment}/{action}", body)
        assert response.status_code == 200, (action, response.status_code, response.body)

    return Step(f"kit maker: {action}", act)


def operator_refunds() -> Step:
    def act(w: World):
        try:
            services.refund_order(w.order_reference(), None, "holder changed their mind", "alice", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step("operator refunds in full", act)


def operator_erases() -> Step:
    def act(w: World):
        try:
            erase_order(w.order_reference(), "holder asked", "alice", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step("operator erases", act)


def holder_cancels(certificate: str) -> Step:
    def act(w: World):
        try:
            services.cancel_order(w.order_reference(), certificate, POSTCODE, w.deps, "198.51.100.7")
        except Exception as exc:  # noqa: BLE001 - the page says try again; the holder does
            raise TryAgain(type(exc).__name__) from None

    return Step("holder cancels", act)


def operator_resends(kind: str) -> Step:
    def act(w: World):
        from chalicelib.services.support import resend

        try:
            resend(w.order_reference(), kind, "alice", "holder deleted it", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step(f"support resends the {kind} email", act)


def support_corrects_the_address() -> Step:
    def act(w: World):
        from chalicelib.domain.delivery import parse_delivery_details
        from chalicelib.services.support import resolve_new_address

        corrected = parse_delivery_details(
            {
                "full_name": "Sam Example",
                "address_line_1": "Flat 2, 1 Test Street",
                "town": "London",
                "postcode": POSTCODE,
            }
        )
        try:
            resolve_new_address(w.order_reference(), corrected, "alice", "flat number missing", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step("support sends the rejected order to a corrected address", act)


def support_cancels() -> Step:
    def act(w: World):
        from chalicelib.services.support import resolve_cancel

        try:
            resolve_cancel(w.order_reference(), "alice", "address does not exist", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step("support cancels the rejected order", act)


def holder_reports_kit_missing(certificate: str) -> Step:
    def act(w: World):
        reference = _order(w)
        w.browser.csrf = None  # days on, the journey's cookie has lapsed: the holder opens the status page afresh
        w.holder_page("POST", "/status", {"reference": reference, "postcode": POSTCODE})
        body = {
            "order_reference": reference,
            "reference": certificate,
            "postcode": POSTCODE,
            "confirm_address": "yes",
        }
        response = w.holder_page("POST", "/status/replacement", body)
        if response.status_code != 200:  # a busy page (503) says try again; the holder does
            raise TryAgain(f"report answered {response.status_code}")

    return Step("holder reports the kit has not arrived", act)


def _order(w: World) -> str:
    """The holder's order: kept from their journey's cookie, which lapses while a kit is in the post."""
    if "order" not in w.notes:
        w.notes["order"] = w.order_reference()
    return w.notes["order"]


def remember_order() -> Step:
    return Step("the holder notes their order reference", _order)


def support_decides(decision: str) -> Step:
    def act(w: World):
        from chalicelib.services.support import approve, decline

        decide = approve if decision == "approve" else decline
        try:
            decide(_order(w), "alice", "lost in the post", w.deps)
        except Exception as exc:  # noqa: BLE001 - the CLI says it failed; the operator runs it again
            raise TryAgain(type(exc).__name__) from None

    return Step(f"support: {decision} replacement", act)


def holder_changes_the_address(certificate: str) -> Step:
    def act(w: World):
        new = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "LS1 4AP"}
        try:
            services.change_delivery_address(w.order_reference(), certificate, POSTCODE, new, w.deps, "198.51.100.7")
        except Exception as exc:  # noqa: BLE001 - the page says try again; the holder does
            raise TryAgain(type(exc).__name__) from None

    return Step("holder changes the address", act)


def support_changes_the_address() -> Step:
    """Support, for a holder who phoned, through the console's own service function."""

    def act(w: World):
        from chalicelib.domain.delivery import parse_new_address
        from chalicelib.services.support import change_address

        new = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "LS1 4AP"}
        try:
            change_address(w.order_reference(), parse_new_address(new), "alice", "holder phoned: moved", w.deps)
        except Exception as exc:  # noqa: BLE001 - the console says try again; support does
            raise TryAgain(type(exc).__name__) from None

    return Step("support changes the address", act)


def _address_changed(w: World) -> None:
    """The new address is the order's, its amendment recorded sent (the invariants check the queue)."""
    order = w.deps.orders.get(w.order_reference())
    assert w.deps.orders.delivery_of(order).postcode == "LS1 4AP", order
    assert (order.amendments_issued, order.amendment_sent) == (1, 1), order


def job(name: str) -> Step:
    return Step(f"schedule runs {name}", lambda w: w.run_job(name))


def later(swept: bool = True, **delta) -> Step:
    return Step(f"time passes {delta}", lambda w: w.later(**delta), swept=swept)


def setup(step: Step) -> Step:
    return Step(step.name, step.act, swept=False)


class _BrokenOnce:
    """The queue or the mail down for one setup step."""

    def __init__(self, w: World, attribute: str, down):
        self.w, self.attribute, self.down = w, attribute, down

    def __enter__(self):
        self.real = getattr(self.w.deps, self.attribute)
        setattr(self.w.deps, self.attribute, self.down)

    def __exit__(self, *_):
        setattr(self.w.deps, self.attribute, self.real)


class _DownQueue:
    def send(self, message):
        raise QueueUnavailable("down")


def with_queue_down(step: Step) -> Step:
    def act(w: World):
        with _BrokenOnce(w, "fulfilment_queue", _DownQueue()):
            return step.act(w)

    return Step(step.name + " (queue down)", act, swept=False)


def with_mail_down(step: Step) -> Step:
    def act(w: World):
        from tests.journeys.test_email import refusing_mailer

        with _BrokenOnce(w, "mailer", refusing_mailer(w.settings)):
            return step.act(w)

    return Step(step.name + " (mail down)", act, swept=False)


# -- the contact register -------------------------------------------------------------------------------
OLD_ADDRESS, NEW_ADDRESS = "old@example.com", "new@example.com"


def contact_registers(address: str) -> Step:
    form = {"reference": PAID_HOLDER, "postcode": POSTCODE, "email": address, "contact_consent": "yes"}
    return Step(f"holder registers {address}", lambda w: w.holder_page("POST", "/contact/register", form))


def _follow(w: World, address: str, path: str):
    """The newest link of this kind emailed to the address: its page, then its button. A link the
    holder's earlier try already used or that never came is the end of it, as for a person."""
    links = w.links_to(address, path)
    if not links:
        return None
    page = w.holder_page("GET", links[-1])
    tokens = re.findall(r'name="token" value="([^"]+)"', page.body.decode())
    return w.holder_page("POST", path, {"token": tokens[0]}) if tokens else page


def contact_confirms(address: str) -> Step:
    return Step(f"holder confirms {address}", lambda w: _follow(w, address, "/contact/confirm"))


def contact_withdraws(address: str) -> Step:
    def act(w: World):
        w.holder_page("POST", "/contact/withdraw", {"email": address})
        return _follow(w, address, "/contact/withdraw/confirm")

    return Step(f"holder withdraws {address} from the withdraw page", act)


def _contacts_are(*addresses: str) -> Callable[[World], None]:
    def expect(w: World) -> None:
        with w.faults.quiet():
            held = sorted(email for email, _ in w.deps.contacts.confirmed())
            pending = w.deps.contacts.notices_due()
        assert held == sorted(addresses), held
        assert pending == [], "a replaced address was never told"

    return expect


def _replaced_and_told(w: World) -> None:
    _contacts_are(NEW_ADDRESS)(w)
    told = [s for s in w.subjects_to(OLD_ADDRESS) if s.endswith("has been replaced")]
    assert told, "the replaced address was not told"


REGISTERED = (contact_registers(OLD_ADDRESS), contact_confirms(OLD_ADDRESS))


# -- what some journeys must end in ------------------------------------------------------------------
def _one_export_for_yesterday(w: World) -> None:
    from chalicelib.services.finance import daily_export_key

    key = daily_export_key(w.clock().date() - timedelta(days=1))
    assert w.deps.exports.exists(key), key
    assert w.order_reference().encode() in w.export_body(key)


def _one_statement_for_last_month(w: World) -> None:
    """The kit maker's statement of the month before: one CSV and one XLSX, whatever crashed."""
    from chalicelib.services.finance import monthly_statement_key, previous_month

    for fmt in ("csv", "xlsx"):
        key = monthly_statement_key(previous_month(w.clock().date()), fmt)
        assert w.deps.exports.exists(key), key


def _erased(w: World) -> None:
    order = w.deps.orders.get(w.order_reference())
    assert order.erased_at is not None and order.delivery.full_name == ERASED, order.delivery


def _erased_and_ended(w: World) -> None:
    """Erased, ended before dispatch, and whatever Stripe took given back."""
    _erased(w)
    order = w.deps.orders.get(w.order_reference())
    assert (order.state, order.fulfilment) == (OrderState.CANCELLED, FulfilmentState.CANCELLED), order
    assert order.payment in (PaymentState.REFUNDED, PaymentState.NOT_TAKEN), order.payment


def _replacement_released(w: World) -> None:
    """The order's second fulfilment released to the kit maker, the first one kept as earlier."""
    order = w.deps.orders.get(_order(w))
    assert (order.fulfilment_attempt, order.fulfilment, order.replacements_approved) == (
        2,
        FulfilmentState.RELEASED,
        1,
    ), order
    assert [e.state for e in order.earlier_fulfilments] == [FulfilmentState.DISPATCHED]


def _replacement_declined(w: World) -> None:
    order = w.deps.orders.get(_order(w))
    assert (order.fulfilment_attempt, order.fulfilment, order.replacement_open) == (
        1,
        FulfilmentState.DISPATCHED,
        False,
    ), order
    assert order.replacement_decline_reason == "lost in the post"


def _cancelled_by_holder(w: World) -> None:
    """Ended before dispatch, whatever Stripe took given back, and the certificate free to order."""
    order = w.deps.orders.get(w.order_reference())
    assert (order.state, order.fulfilment, order.cancelled_by_holder) == (
        OrderState.CANCELLED,
        FulfilmentState.CANCELLED,
        True,
    ), order
    assert order.payment in (PaymentState.REFUNDED, PaymentState.NOT_REQUIRED), order.payment


def _sent_again(w: World) -> None:
    """Rejected, then sent again by support as the order's next fulfilment to the corrected address."""
    order = w.deps.orders.get(w.order_reference())
    assert (order.fulfilment_attempt, order.fulfilment, order.payment) == (
        2,
        FulfilmentState.RELEASED,
        PaymentState.PAID,
    ), order
    assert [e.state for e in order.earlier_fulfilments] == [FulfilmentState.REJECTED]
    assert w.deps.orders.delivery_of(order).address_line_1 == "Flat 2, 1 Test Street"


def _cancelled_by_support(w: World) -> None:
    """Rejected, then ended by support: whatever Stripe took given back, the certificate free to order."""
    order = w.deps.orders.get(w.order_reference())
    assert (order.state, order.fulfilment, order.cancelled_by_support) == (
        OrderState.CANCELLED,
        FulfilmentState.CANCELLED,
        True,
    ), order
    assert (order.payment, order.refunded_pence) == (PaymentState.REFUNDED, order.amount.pence), order.payment
    assert not order.needs_support


PAID = (*ordering(PAID_HOLDER), pays(), stripe_sends("checkout.session.completed"))
FREE = (*ordering(FREE_HOLDER),)

JOURNEYS = (
    Journey("free order", (*FREE, confirmation_page())),
    Journey("paid, webhook first", (*PAID, return_page())),
    Journey(
        "paid, return page first",
        (*ordering(PAID_HOLDER), pays(), return_page(), stripe_sends("checkout.session.completed")),
    ),
    Journey(
        "bank transfer arrives",
        (
            *ordering(PAID_HOLDER),
            pays("bank"),
            stripe_sends("checkout.session.completed"),
            bank_settles(True),
            stripe_sends("checkout.session.async_payment_succeeded"),
        ),
    ),
    Journey(
        "bank transfer fails",
        (
            *ordering(PAID_HOLDER),
            pays("bank"),
            stripe_sends("checkout.session.completed"),
            bank_settles(False),
            stripe_sends("checkout.session.async_payment_failed"),
        ),
    ),
    Journey("checkout expires", (*ordering(PAID_HOLDER), session_expires(), stripe_sends("checkout.session.expired"))),
    Journey("lapsed hold swept", (*ordering(PAID_HOLDER), later(hours=2), job("sweep_lapsed_holds"))),
    Journey("refund before dispatch", (*PAID, operator_refunds(), stripe_sends_the_rest())),
    Journey(
        "refund after dispatch",
        (*PAID, kit_maker("accept"), kit_maker("dispatch"), operator_refunds(), stripe_sends_the_rest()),
    ),
    Journey("kit maker accepts and dispatches", (*FREE, kit_maker("accept"), kit_maker("dispatch"))),
    Journey("kit maker rejects", (*FREE, kit_maker("reject"))),
    Journey("kit maker reports a return", (*map(setup, (*FREE, kit_maker("dispatch"))), kit_maker("returned"))),
    Journey(
        "relay of an unsent order",
        (*map(setup, FREE[:-1]), with_queue_down(FREE[-1]), later(minutes=5), job("relay_unsent_fulfilments")),
    ),
    Journey(
        "emails retried",
        (
            *map(setup, FREE[:-1]),
            with_mail_down(FREE[-1]),
            with_mail_down(kit_maker("dispatch")),
            later(minutes=20),
            job("relay_unsent_fulfilments"),
            later(hours=1),
            job("relay_unsent_fulfilments"),
        ),
    ),
    Journey(
        "daily reconciliation export",
        (*map(setup, PAID), later(hours=18, minutes=15), job("export_daily_reconciliation")),
        expect=_one_export_for_yesterday,
    ),
    Journey(
        "monthly kit maker's statement export",
        (*map(setup, (*FREE, kit_maker("dispatch"))), later(hours=18, minutes=15), job("export_daily_reconciliation")),
        expect=_one_statement_for_last_month,
    ),
    Journey("erased before payment", (*ordering(PAID_HOLDER), operator_erases()), expect=_erased_and_ended),
    Journey(
        "erased as the holder pays",
        (*ordering(PAID_HOLDER), pays(), operator_erases(), stripe_sends("checkout.session.completed")),
        expect=_erased_and_ended,
    ),
    Journey("erased after release", (*PAID, operator_erases(), stripe_sends_the_rest()), expect=_erased_and_ended),
    Journey(
        "holder cancels a free order",
        # the relay's schedule runs before the holder cancels, so a release the queue refused is made
        # first and every point ends as the fault-free run does (released, then cancelled)
        (*FREE, later(minutes=5), job("relay_unsent_fulfilments"), holder_cancels(FREE_HOLDER)),
        expect=_cancelled_by_holder,
    ),
    Journey(
        "holder cancels a paid order",
        (*PAID, holder_cancels(PAID_HOLDER), stripe_sends_the_rest()),
        expect=_cancelled_by_holder,
    ),
    Journey(
        "support resends a dispatch email",
        (*map(setup, (*FREE, kit_maker("dispatch"))), operator_resends("dispatch")),
    ),
    Journey(
        "kit maker rejects a paid order and support cancels and refunds",
        (*PAID, kit_maker("reject"), support_cancels(), stripe_sends_the_rest()),
        expect=_cancelled_by_support,
    ),
    Journey(
        "kit maker rejects a paid order and support sends it to a corrected address",
        (
            *PAID,
            kit_maker("reject"),
            support_corrects_the_address(),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_sent_again,
    ),
    Journey(
        "holder reports a lost kit and support approves",
        (
            *map(setup, (*FREE, kit_maker("dispatch"), remember_order(), later(days=10))),
            holder_reports_kit_missing(FREE_HOLDER),
            support_decides("approve"),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_replacement_released,
    ),
    Journey(
        "holder reports a lost kit and support declines",
        (
            *map(setup, (*FREE, kit_maker("dispatch"), remember_order(), later(days=10))),
            holder_reports_kit_missing(FREE_HOLDER),
            support_decides("decline"),
        ),
        expect=_replacement_declined,
    ),
    Journey(
        "holder changes the address of a released order",
        (
            *map(setup, FREE),
            holder_changes_the_address(FREE_HOLDER),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_address_changed,
    ),
    Journey(
        "holder changes the address of an order the queue refused",
        (
            *map(setup, FREE[:-1]),
            with_queue_down(FREE[-1]),
            holder_changes_the_address(FREE_HOLDER),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_address_changed,
    ),
    Journey(
        "support changes the address of a released order",
        (
            *map(setup, FREE),
            support_changes_the_address(),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_address_changed,
    ),
    Journey("holder registers an email and confirms it", REGISTERED, expect=_contacts_are(OLD_ADDRESS)),
    Journey(
        "holder replaces the registered email and the old one is told",
        (
            *map(setup, REGISTERED),
            contact_registers(NEW_ADDRESS),
            contact_confirms(NEW_ADDRESS),
            later(minutes=5),
            job("relay_unsent_fulfilments"),
        ),
        expect=_replaced_and_told,
    ),
    Journey(
        "holder withdraws the email from the withdraw page",
        (*map(setup, REGISTERED), contact_withdraws(OLD_ADDRESS)),
        expect=_contacts_are(),
    ),
    Journey(
        "retention purge",
        (*map(setup, (*FREE, kit_maker("dispatch"))), later(days=31), job("purge_personal_data")),
        expect=_erased,
    ),
)
