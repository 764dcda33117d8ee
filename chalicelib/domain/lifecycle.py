"""Every change to an order, and the effects that follow. The one place to read what a fact does.

Each transition is a pure function of the order and a fact (with who reports it and when) that
returns an `Outcome`: the new order and the effects the world owes it. `services.changes` saves the
outcome on condition of the order's version and carries the effects out; adapters only translate.
Every transition is safe to apply late, early or twice: a fact is compared with the order's current
state rather than assumed to arrive in order, and paid money is never ignored.

TRANSITIONS at the end lists them all; docs/architecture.md's table is checked against it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from .changes import Effect, GuardedChange, Outcome, Source, Transition, noted, record_change, unchanged
from .delivery import DeliveryDetails
from .eligibility import Eligibility, EligibilityReason
from .errors import (
    AddressNotChangeable,
    FulfilmentConflict,
    NothingToResend,
    NothingToResolve,
    OrderNotFound,
    ReplacementRefused,
    ReplacementTooEarly,
)
from .money import Money
from .orders import (
    BEFORE_DISPATCH,
    MONEY_TAKEN,
    Dispatch,
    EarlierFulfilment,
    FulfilmentState,
    HistoryEntry,
    Order,
    OrderState,
    PaymentState,
)
from .payments import MoneyView, money_state, show
from .references import fulfilment_id_of

# Payment states in which Stripe holds money tracekit may give back (a disputed payment is settled
# by the dispute, and Stripe refuses to refund it).
REFUNDABLE = frozenset({PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED})
# Stripe's own expiry webhook gets this long after a session lapses before the hold sweep steps in
# (the checkout's hold itself is configuration: CHECKOUT_HOLD_MINUTES).
HOLD_GRACE = timedelta(minutes=15)
# The holder's emails (services.notifications): a failed send comes back after RETRY_STEP times its
# failures, MAX_ATTEMPTS in all (about 4 hours); a sender holds an email for CLAIM_LEASE, longer
# than any function that sends runs (the relay's limit is 300 s), so a live sender's claim is never
# taken over, and short enough that a dead sender's email goes out within the quarter hour.
RETRY_STEP = timedelta(minutes=15)
MAX_ATTEMPTS = 6
CLAIM_LEASE = timedelta(minutes=10)


# -- The holder places an order; Stripe's Checkout takes the money ---------------------------------


def place_order(
    reference: str,
    certificate_key: str,
    eligibility: Eligibility,
    delivery: DeliveryDetails,
    now: datetime,
    hold: timedelta = timedelta(minutes=60),
) -> Outcome:
    """A free order is confirmed at once and goes to the kit maker; a paid one waits for Stripe,
    holding the certificate's claim until its checkout's hold (plus the grace) runs out."""
    free = eligibility.is_free
    order = Order(
        reference=reference,
        certificate_key=certificate_key,
        created_at=now,
        amount=eligibility.price,
        eligibility_reason=eligibility.reason.value,
        delivery=delivery,
        state=OrderState.CONFIRMED if free else OrderState.PLACED,
        payment=PaymentState.NOT_REQUIRED if free else PaymentState.AWAITING,
        fulfilment=FulfilmentState.NOT_RELEASED,
        hold_until=None if free else now + hold + HOLD_GRACE,
        history=(
            HistoryEntry(
                now, "holder", "placed a free order" if free else f"placed an order for {eligibility.price.display()}"
            ),
        ),
    )
    return Outcome(order, frozenset({Effect.RELEASE_TO_MANUFACTURER}) if free else frozenset())


def open_checkout(
    order: Order, session_id: str, url: str, expires_at: datetime, attempt: int, now: datetime
) -> Outcome:
    """A Checkout Session opened for the order: the claim is held until it lapses, plus the grace."""
    return record_change(
        order,
        Source("system"),
        now,
        f"opened checkout session {session_id}",
        checkout_session_id=session_id,
        checkout_url=url,
        checkout_expires_at=expires_at,
        checkout_attempt=attempt,
        hold_until=expires_at + HOLD_GRACE,
    )


def accept_payment(
    order: Order, paid: Money | None, payment_intent_id: str | None, source: Source, now: datetime
) -> Outcome:
    """Stripe says the holder paid. Honoured even after expiry; flagged if the money is wrong; given
    back if the order's personal data was erased first (no kit can be posted, and none is)."""
    if order.payment in MONEY_TAKEN:
        if payment_intent_id and order.payment_intent_id and payment_intent_id != order.payment_intent_id:
            note = f"a second payment ({payment_intent_id}) for a paid order: flagged for refund"
            return record_change(order, source, now, note, payment_flag=f"duplicate_payment:{payment_intent_id}")
        return noted(order, source, now, "payment already recorded")
    intent = payment_intent_id or order.payment_intent_id
    if paid is None or paid != order.amount:
        note = f"payment of {show(paid)} does not match the order: flagged, not fulfilled"
        return record_change(
            order, source, now, note, payment_flag=f"amount_mismatch:{show(paid)}", payment_intent_id=intent
        )
    payment = money_state(order.amount, order.refunded_pence, order.dispute_status)
    paid_fields = {"paid_at": now, "payment_intent_id": intent, "payment_processing": False, "hold_until": None}
    if order.erased_at is not None or order.cancelled_by_holder:  # no kit is wanted: the money goes back
        effects = {Effect.REFUND_IN_FULL} if payment in REFUNDABLE else set()
        why = "its personal data was erased" if order.erased_at is not None else "the holder cancelled"
        change = f"paid after {why}: not fulfilled, refunded in full"
        ended: dict[str, Any] = {"state": OrderState.CANCELLED, "fulfilment": FulfilmentState.CANCELLED}
        ended["cancelled_at"] = order.cancelled_at or now
        return record_change(order, source, now, change, effects, payment=payment, **ended, **paid_fields)
    late = order.state in (OrderState.EXPIRED, OrderState.CANCELLED)
    effects = {Effect.RECLAIM} if late else set()
    fields: dict[str, Any] = {"state": OrderState.CONFIRMED}
    if payment is PaymentState.REFUNDED:  # refunded before we even heard it was paid
        fields = {"state": OrderState.CANCELLED, "fulfilment": FulfilmentState.CANCELLED, "cancelled_at": now}
    elif order.fulfilment is FulfilmentState.NOT_RELEASED:
        effects.add(Effect.RELEASE_TO_MANUFACTURER)
    change = "paid after the order had lapsed: honoured" if late else "paid"
    return record_change(order, source, now, change, effects, payment=payment, **fields, **paid_fields)


# An order as `place_order` makes a paid one: what a guarded change's sketch starts from.
_SKETCH = place_order(
    "TK-00000-00000",
    "",
    Eligibility(Money(1), EligibilityReason.STANDARD_PRICE),
    DeliveryDetails("", "", "", "", "", ""),
    datetime(2017, 1, 1, tzinfo=timezone.utc),
).order


def pay_as_expected(paid: Money, payment_intent_id: str | None, source: Source, now: datetime) -> GuardedChange:
    """The paid webhook's common case: an order simply awaiting exactly this payment is paid."""
    return GuardedChange(
        requires={
            "state": OrderState.PLACED,
            "payment": PaymentState.AWAITING,
            "fulfilment": FulfilmentState.NOT_RELEASED,
            "amount": paid,
            "refunded_pence": 0,
            "dispute_status": None,
            "erased_at": None,  # a payment for an erased order is refunded (accept_payment), never fulfilled
        },
        sets={
            "state": OrderState.CONFIRMED,
            "payment": PaymentState.PAID,
            "paid_at": now,
            "payment_processing": False,
            "hold_until": None,
            **({"payment_intent_id": payment_intent_id} if payment_intent_id else {}),
        },
        entry=HistoryEntry(now, source.actor, "paid", source.event_id),
        effects=frozenset({Effect.RELEASE_TO_MANUFACTURER}),
        template=_SKETCH,
    )


def note_processing(order: Order, payment_intent_id: str | None, source: Source, now: datetime) -> Outcome:
    """Checkout completed with a payment method that confirms later (bank debits)."""
    if not order.awaits_payment:
        return noted(order, source, now, "checkout completed (payment pending) after the order moved on")
    change = "checkout completed; payment processing"
    return record_change(order, source, now, change, payment_processing=True, payment_intent_id=payment_intent_id)


def fail_payment(order: Order, source: Source, now: datetime) -> Outcome:
    """An asynchronous payment failed: the order lapses and the certificate may order again."""
    if not order.awaits_payment:
        return noted(order, source, now, f"payment failure ignored: payment is {order.payment.value}")
    return _lapse(order, source, now, "payment failed", OrderState.CANCELLED, PaymentState.FAILED)


def expire_checkout(order: Order, session_id: str | None, source: Source, now: datetime) -> Outcome:
    """The checkout session lapsed unpaid. A late expiry never un-pays an order."""
    if session_id and order.checkout_session_id and session_id != order.checkout_session_id:
        return noted(order, source, now, f"expiry of superseded session {session_id} ignored")
    if not order.awaits_payment or order.payment_processing:
        return noted(order, source, now, f"expiry ignored: order is {order.state.value}, payment {order.payment.value}")
    return _lapse(order, source, now, "checkout expired unpaid", OrderState.EXPIRED, PaymentState.NOT_TAKEN)


def abandon_checkout(order: Order, source: Source, now: datetime) -> Outcome:
    """No checkout session could be opened: nothing half-made may keep holding the certificate."""
    if not order.awaits_payment or order.checkout_session_id:
        return noted(order, source, now, "abandon ignored: a checkout session exists or the order moved on")
    change = "payment service unavailable: order abandoned"
    return _lapse(order, source, now, change, OrderState.CANCELLED, PaymentState.NOT_TAKEN)


def _lapse(
    order: Order, source: Source, now: datetime, change: str, state: OrderState, payment: PaymentState
) -> Outcome:
    """The order ended with no money taken: its claim goes back, so the certificate may order again."""
    fields = {"state": state, "payment": payment, "payment_processing": False, "hold_until": None}
    return record_change(order, source, now, change, {Effect.RELEASE_CLAIM}, **fields)


def reconcile_money(order: Order, view: MoneyView, source: Source, now: datetime, note: str = "") -> Outcome:
    """Refunds and disputes, from Stripe's current view of the payment (so order of events is moot).
    A full refund before dispatch cancels the fulfilment; the kit maker's cancellations list shows
    it (a view of the state, in the same write) if it had been released to them."""
    refunded = max(order.refunded_pence, view.amount_refunded)
    facts: dict[str, Any] = {"refunded_pence": refunded, "dispute_status": view.dispute_status}
    if order.payment not in MONEY_TAKEN:
        change = f"noted before the payment: refunded {refunded}p, dispute {view.dispute_status or 'none'}{note}"
        return record_change(order, source, now, change, **facts)
    payment = money_state(order.amount, refunded, view.dispute_status)
    if payment is order.payment and refunded == order.refunded_pence and view.dispute_status == order.dispute_status:
        return noted(order, source, now, "no change to the money" + note)
    cancels: dict[str, Any] = {}
    if payment is PaymentState.REFUNDED and order.fulfilment in BEFORE_DISPATCH:
        cancels = {"fulfilment": FulfilmentState.CANCELLED, "state": OrderState.CANCELLED, "cancelled_at": now}
    change = f"payment {payment.value}: refunded {Money(refunded, order.amount.currency).display()}"
    change += (f", dispute {view.dispute_status}" if view.dispute_status else "") + note
    return record_change(order, source, now, change, payment=payment, **cancels, **facts)


# -- The kit maker: released to it, then accepted, dispatched or rejected --------------------------


def release(order: Order, now: datetime) -> Outcome:
    """The fulfilment message went to the kit maker; the holder's confirmation email is due."""
    if not order.awaits_release:
        return unchanged(order)
    first = order.fulfilment_attempt == 1  # a later attempt's holder was told already: no second confirmation
    effects = {Effect.EMAIL_CONFIRMATION} if order.delivery.email and first else set()
    return record_change(
        order,
        Source("system"),
        now,
        "released to the manufacturer" if first else f"released to the manufacturer as {order.fulfilment_id}",
        effects,
        fulfilment=FulfilmentState.RELEASED,
        released_at=now,
    )


def outstanding(order: Order) -> frozenset[Effect]:
    """Effects owed by the order's state that a crash may have left undone: the relay's work (an
    order confirmed and not released), and the refund of an order its erasure ended (finished by
    the next touch of the order: the operator's command again, or Stripe's redelivery)."""
    owed = {Effect.RELEASE_TO_MANUFACTURER} if order.awaits_release else set()
    if _refund_owed(order):
        owed.add(Effect.REFUND_IN_FULL)
    if order.amendment_unsent:  # the holder's new address, owed to the kit maker on the queue
        owed.add(Effect.SEND_AMENDMENT)
    return frozenset(owed)


def _refund_owed(order: Order) -> bool:
    """Ended before its kit went out by its erasure or by the holder (or, its kit rejected or
    returned, by support), and Stripe still holds some of its money."""
    ended = order.erased_at is not None or order.cancelled_by_holder or order.cancelled_by_support
    return ended and order.fulfilment is FulfilmentState.CANCELLED and order.payment in REFUNDABLE


def withhold_release(order: Order, problems: tuple[str, ...], now: datetime) -> Outcome:
    """The fulfilment message broke its schema and was not sent. The order leaves the relay's list
    (it would break it again on every run) as a fulfilment tracekit itself could not make: the
    holder's status page says there is a problem, the operator sees why in the order's log."""
    if not order.awaits_release:
        return unchanged(order)
    reason = "not sent: the fulfilment message breaks its schema (" + ", ".join(problems) + ")"
    return record_change(
        order,
        Source("system"),
        now,
        reason,
        fulfilment=FulfilmentState.REJECTED,
        rejection_reason=reason,
        rejected_at=now,
    )


def accept(order: Order, source: Source, now: datetime) -> Outcome:
    if order.fulfilment in (FulfilmentState.ACCEPTED, FulfilmentState.DISPATCHED):
        return unchanged(order)
    _require_open(order, "accept")
    return record_change(
        order, source, now, "accepted by the manufacturer", fulfilment=FulfilmentState.ACCEPTED, accepted_at=now
    )


def dispatch(order: Order, details: Dispatch, source: Source, now: datetime) -> Outcome:
    if order.fulfilment is FulfilmentState.DISPATCHED:
        if order.dispatch == details:
            return unchanged(order)
        raise FulfilmentConflict(
            f"{order.fulfilment_id} was already dispatched with kit code "
            f"{order.dispatch.kit_code if order.dispatch else '?'}; a different dispatch cannot be recorded"
        )
    _require_open(order, "dispatch")
    change = f"dispatched by {details.carrier} ({details.tracking_reference})"
    effects = {Effect.EMAIL_DISPATCH} if order.delivery.email else set()
    return record_change(order, source, now, change, effects, fulfilment=FulfilmentState.DISPATCHED, dispatch=details)


def reject(order: Order, reason: str, source: Source, now: datetime) -> Outcome:
    if order.fulfilment is FulfilmentState.REJECTED:
        return unchanged(order)
    _require_open(order, "reject")
    change = f"rejected by the manufacturer: {reason}"
    effects = {Effect.EMAIL_REJECTED} if order.delivery.email else set()  # never with the kit maker's reason
    return record_change(
        order,
        source,
        now,
        change,
        effects,
        fulfilment=FulfilmentState.REJECTED,
        rejection_reason=reason,
        rejected_at=now,
    )


def report_returned(order: Order, reason: str, source: Source, now: datetime) -> Outcome:
    """A posted kit came back to the kit maker undelivered. Support resolves it (so the address is
    kept meanwhile); the holder is told to expect contact, never the kit maker's own words."""
    if order.fulfilment is FulfilmentState.RETURNED:
        return unchanged(order)
    if order.fulfilment is not FulfilmentState.DISPATCHED:
        if order.released_at is None:  # never given to the manufacturer: as if it did not exist
            raise OrderNotFound(order.fulfilment_id)
        why = _NOT_POSTED_BECAUSE.get(order.fulfilment, f"is {order.fulfilment.value}")
        raise FulfilmentConflict(f"cannot report {order.fulfilment_id} returned: it {why}")
    effects = {Effect.EMAIL_RETURNED} if order.delivery.email else set()
    change = f"returned to the manufacturer undelivered: {reason}"
    return record_change(
        order, source, now, change, effects, fulfilment=FulfilmentState.RETURNED, returned_at=now, return_reason=reason
    )


def acknowledge_cancellation(order: Order, source: Source, now: datetime) -> Outcome:
    if order.released_at is None:
        raise OrderNotFound(order.fulfilment_id)
    if order.fulfilment is not FulfilmentState.CANCELLED:
        raise FulfilmentConflict(f"{order.fulfilment_id} is not cancelled (it is {order.fulfilment.value})")
    if order.cancellation_acknowledged:
        return unchanged(order)
    change = "cancellation acknowledged by the manufacturer"
    return record_change(order, source, now, change, cancellation_acknowledged=True)


_CLOSED_BECAUSE = {
    FulfilmentState.CANCELLED: "was cancelled because the order was refunded: do not send it",
    FulfilmentState.REJECTED: "was rejected earlier",
    FulfilmentState.DISPATCHED: "was already dispatched",
    FulfilmentState.RETURNED: "was dispatched and has come back",
}
# Why a fulfilment cannot come back: it never went out.
_NOT_POSTED_BECAUSE = {
    **_CLOSED_BECAUSE,
    FulfilmentState.RELEASED: "was never dispatched: reject it instead",
    FulfilmentState.ACCEPTED: "was never dispatched: reject it instead",
}


def _require_open(order: Order, action: str) -> None:
    if order.open_for_manufacturer:
        return
    if order.released_at is None:  # never given to the manufacturer: as if it did not exist
        raise OrderNotFound(order.fulfilment_id)
    why = _CLOSED_BECAUSE.get(order.fulfilment, f"is {order.fulfilment.value}")
    raise FulfilmentConflict(f"cannot {action} {order.fulfilment_id}: it {why}")


# -- After the order: the holder changes their mind ----------------------------------------------


def cancel_by_holder(order: Order, source: Source, now: datetime) -> Outcome:
    """The holder cancels (after proving the certificate again), any time before dispatch: ended as
    an erasure ends it (an unpaid order's checkout closed; a paid one refunded in full through the
    operators' refund path; the kit maker's cancellations list shows it if it was released), and
    the certificate may order again. Idempotent: a cancelled order is left as it is. Refused
    (FulfilmentConflict) once the kit has gone, or the order ended otherwise."""
    if order.cancelled_by_holder:
        return unchanged(order)
    if not (order.awaits_payment or (order.is_confirmed and order.fulfilment in BEFORE_DISPATCH)):
        raise FulfilmentConflict(f"order {order.reference} cannot be cancelled: it is {_stage(order)}")
    ended, effects, change = _end_for_erasure(order, now)
    if order.delivery.email:
        effects.add(Effect.EMAIL_CANCELLATION)
    change = "cancelled by the holder" + change
    return record_change(order, source, now, change, effects, cancelled_by_holder=True, **ended)


def _stage(order: Order) -> str:
    if order.fulfilment is FulfilmentState.DISPATCHED:
        return "already dispatched"
    return f"{order.state.value} (fulfilment {order.fulfilment.value})"


# -- After the order: a kit that has not arrived, and a replacement --------------------------------


def request_replacement(order: Order, source: Source, now: datetime, not_before_days: int) -> Outcome:
    """The holder (having proved the certificate again, and confirmed the address) reports that the
    kit posted to them has not arrived, from `not_before_days` after its dispatch: the order joins
    support's work list and its address is kept until support decides. Idempotent: a request
    already open is left as it is. Refused (FulfilmentConflict, ReplacementTooEarly) otherwise."""
    if order.replacement_open:
        return unchanged(order)
    if order.fulfilment is not FulfilmentState.DISPATCHED or order.dispatch is None or order.erased_at is not None:
        raise ReplacementRefused(f"order {order.reference} cannot be reported missing: it is {_stage(order)}")
    if order.replacement_requested_at is not None and order.replacement_requested_at > order.dispatch.dispatched_at:
        raise ReplacementRefused(f"order {order.reference}: support has already decided on a report for this kit")
    allowed_from = order.replacement_allowed_from(not_before_days)
    if allowed_from is None or now < allowed_from:
        raise ReplacementTooEarly(allowed_from or now)
    effects = {Effect.EMAIL_REPLACEMENT_REQUESTED} if order.delivery.email else set()
    change = f"the holder reports that {order.fulfilment_id} has not arrived, and confirmed the address"
    fields = {"replacement_resolved_at": None, "replacement_decline_reason": None}
    return record_change(order, source, now, change, effects, replacement_requested_at=now, **fields)


def approve_replacement(order: Order, source: Source, now: datetime, why: str, admin_override: bool = False) -> Outcome:
    """Support sends a replacement: a second fulfilment of the same order with its own id (the
    next attempt's, see references.fulfilment_id_of), at no charge, to the same address; the holder
    is told it is on its way. At most one per order unless an admin overrides, with the reason in
    the log. Idempotent: the same approval again (recognised from the log) does nothing more."""
    change = f"replacement approved: {why}" + (" (admin override)" if admin_override else "")
    if not order.replacement_open:  # the log line carries the ids after "; " (_next_fulfilment)
        if any(e.actor == source.actor and e.change.startswith(change + "; ") for e in order.history):
            return unchanged(order)
        raise FulfilmentConflict(f"order {order.reference} has no open report of a kit that has not arrived")
    if order.replacements_approved >= 1 and not admin_override:
        raise FulfilmentConflict(
            f"order {order.reference} already had {order.replacements_approved} replacement(s): "
            "only an admin may approve another (--admin, with the reason)"
        )
    effects = {Effect.EMAIL_REPLACEMENT_APPROVED} if order.delivery.email else set()
    resolved = {"replacement_resolved_at": now, "replacements_approved": order.replacements_approved + 1}
    return _next_fulfilment(order, source, now, change, effects, reason="replacement approved", **resolved)


def decline_replacement(order: Order, source: Source, now: datetime, why: str) -> Outcome:
    """Support declines the report: the request closes and the holder is emailed support's reason
    (its own words, never the kit maker's); the usual retention from the dispatch applies again.
    Idempotent: the same decision again (recognised from the log) does nothing more."""
    change = f"replacement declined: {why}"
    if not order.replacement_open:
        if any(e.actor == source.actor and e.change == change for e in order.history):
            return unchanged(order)
        raise FulfilmentConflict(f"order {order.reference} has no open report of a kit that has not arrived")
    effects = {Effect.EMAIL_REPLACEMENT_DECLINED} if order.delivery.email else set()
    return record_change(
        order, source, now, change, effects, replacement_resolved_at=now, replacement_decline_reason=why
    )


def _next_fulfilment(
    order: Order,
    source: Source,
    now: datetime,
    change: str,
    effects: set[Effect] | frozenset[Effect] = frozenset(),
    reason: str | None = None,
    **changes: Any,
) -> Outcome:
    """The order's current fulfilment becomes an earlier one (its id, state, dispatch, and `reason`)
    and attempt n+1 starts as not released, with nothing of the last attempt's fulfilment fields:
    the relay sends it as a new fulfilment message (its own id, so SQS's deduplication lets it
    through). `changes` are any other fields the same write sets (a corrected address, say)."""
    earlier = EarlierFulfilment(
        fulfilment_id=order.fulfilment_id,
        state=order.fulfilment,
        released_at=order.released_at,
        dispatch=order.dispatch,
        ended_at=now,
        reason=reason,
    )
    fresh: dict[str, Any] = {
        "fulfilment": FulfilmentState.NOT_RELEASED,
        "fulfilment_attempt": order.fulfilment_attempt + 1,
        "earlier_fulfilments": order.earlier_fulfilments + (earlier,),
        "released_at": None,
        "accepted_at": None,
        "dispatch": None,
        "rejection_reason": None,
        "rejected_at": None,
        "returned_at": None,
        "return_reason": None,
        # the new fulfilment's message carries the current address: no amendment of the old one is owed
        "amendment_sent": order.amendments_issued,
        "amendment_acknowledged": order.amendments_issued,
    }
    change += f"; {order.fulfilment_id} superseded by {fulfilment_id_of(order.reference, order.fulfilment_attempt + 1)}"
    all_effects = {Effect.RELEASE_TO_MANUFACTURER, *effects}
    return record_change(order, source, now, change, all_effects, **{**fresh, **changes})


# -- After the order: the holder changes the delivery address --------------------------------------


def change_address(
    order: Order, delivery: DeliveryDetails, source: Source, now: datetime, why: str | None = None
) -> Outcome:
    """The holder (having proved the certificate again) gives a new name and address. `order`
    carries its delivery details in clear. The email and the contact consent stay as they were.
    The same address again changes nothing. A confirmed order owes the kit maker an amendment,
    numbered 1, 2, ... (sent on the queue once it is released, listed by the API until
    acknowledged): a confirmed order not yet recorded released may already have had its message
    sent with the old address (a send whose release was not recorded: the queue would drop the
    relay's resend as a duplicate). An unpaid order has sent nothing: its message will carry the
    new address. The holder is emailed. Refused (AddressNotChangeable) once the kit maker has
    accepted it, or it has ended. Support may change it for the holder (`why` then says why)."""
    if not order.address_changeable:
        raise AddressNotChangeable(f"the address of order {order.reference} cannot be changed: it is {_stage(order)}")
    kept = order.delivery
    new = replace(delivery, email=kept.email, contact_consent=kept.contact_consent)
    if new == kept:
        return unchanged(order)
    effects = {Effect.EMAIL_ADDRESS_CHANGED} if kept.email else set()
    fields: dict[str, Any] = {"delivery": new}
    change = "delivery address changed by the holder" if why is None else f"delivery address changed by support: {why}"
    if order.is_confirmed:
        number = order.amendments_issued + 1
        fields.update(amendments_issued=number, amended_at=now)
        effects.add(Effect.SEND_AMENDMENT)
        change += f": amendment {number} owed to the manufacturer"
    return record_change(order, source, now, change, effects, **fields)


def record_amendment_sent(order: Order, number: int, now: datetime) -> Outcome:
    """The queue took amendment `number` (and so every one before it: each carries the whole
    current address). Idempotent: a later or repeated send record changes nothing more."""
    if number <= order.amendment_sent:
        return unchanged(order)
    change = f"address amendment {number} sent to the manufacturer"
    return record_change(order, Source("system"), now, change, amendment_sent=number)


def acknowledge_amendment(order: Order, number: object, source: Source, now: datetime) -> Outcome:
    """The kit maker has seen amendment `number` (and those before it). Idempotent; a number never
    issued contradicts the record (FulfilmentConflict); a fulfilment never released is unknown."""
    if order.released_at is None:
        raise OrderNotFound(order.fulfilment_id)
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= order.amendments_issued:
        issued = order.amendments_issued
        raise FulfilmentConflict(f"{order.fulfilment_id} has no amendment {number!r} ({issued} issued)")
    if number <= order.amendment_acknowledged:
        return unchanged(order)
    change = f"address amendment {number} acknowledged by the manufacturer"
    return record_change(order, source, now, change, amendment_acknowledged=number)


# -- Support: an operator acts on an order, and the log says who and why ---------------------------

RESENDABLE = {"confirmation": Effect.EMAIL_CONFIRMATION, "dispatch": Effect.EMAIL_DISPATCH}


def resend_email(order: Order, kind: str, source: Source, now: datetime, why: str) -> Outcome:
    """Support sends the holder's confirmation or dispatch email again, logged with who and why.
    The same request again (same operator, kind and reason, recognised from the log) does nothing
    more; a new reason is a new request. Refused with NothingToResend if there is no address, or
    the email's moment has not come (confirmation before release, dispatch before dispatch)."""
    effect = RESENDABLE.get(kind)
    if effect is None:
        raise NothingToResend(f"there is no {kind!r} email; resend confirmation or dispatch")
    if not order.delivery.email or order.erased_at is not None:
        raise NothingToResend(f"{order.reference} has no email address to send to")
    if kind == "confirmation" and order.released_at is None:
        raise NothingToResend(f"{order.reference} has not been released to the kit maker: no confirmation yet")
    if kind == "dispatch" and (order.fulfilment is not FulfilmentState.DISPATCHED or order.dispatch is None):
        raise NothingToResend(f"{order.reference} has not been dispatched: no dispatch email yet")
    change = f"{kind} email resent: {why}"
    if any(e.actor == source.actor and e.change == change for e in order.history):
        return unchanged(order)
    return record_change(order, source, now, change, {effect})


def resolve_by_cancelling(order: Order, source: Source, now: datetime, why: str) -> Outcome:
    """Support ends an order the kit maker rejected or got back: cancelled (the kit maker's
    cancellations list shows it, so nothing is sent again), what Stripe holds of a paid one
    refunded in full through the operators' refund path, the certificate free to order again, the
    holder emailed, and the order off support's list; its personal data then kept the usual period
    from now. Idempotent: a resolved order is left as it is. Refused (NothingToResolve) for an
    order that is not waiting for support."""
    if order.cancelled_by_support:
        return unchanged(order)
    if not order.needs_support or order.fulfilment not in (FulfilmentState.REJECTED, FulfilmentState.RETURNED):
        raise NothingToResolve(f"{order.reference} is not waiting for support: it is {_stage(order)}")
    effects = {Effect.RELEASE_CLAIM}
    if order.payment in REFUNDABLE:
        effects.add(Effect.REFUND_IN_FULL)
    if order.delivery.email:
        effects.add(Effect.EMAIL_CANCELLATION)
    what = "returned" if order.fulfilment is FulfilmentState.RETURNED else "rejected"
    refunded = ", refunded" if Effect.REFUND_IN_FULL in effects else ""
    change = f"{what} order cancelled by support{refunded}: {why}"
    ended = {"state": OrderState.CANCELLED, "fulfilment": FulfilmentState.CANCELLED, "cancelled_at": now}
    return record_change(order, source, now, change, effects, cancelled_by_support=True, **ended)


_RESOLVED = ("returned", "rejected")


def resolve_with_new_address(
    order: Order, delivery: DeliveryDetails, source: Source, now: datetime, why: str
) -> Outcome:
    """Support corrects the address of an order the kit maker rejected or got back and sends it
    again: the order's next fulfilment (its own id, F-…-n), to the corrected name and address (the
    email and the consent stay the holder's), at no charge; the holder is told it is on its way,
    never the kit maker's reason. The log names who and why, never the address. Idempotent: the
    same resolution again (recognised from the log) does nothing more."""
    what = "returned" if order.fulfilment is FulfilmentState.RETURNED else "rejected"
    change = f"{what} order sent again to a corrected address by support: {why}"
    waiting = order.fulfilment in (FulfilmentState.REJECTED, FulfilmentState.RETURNED)
    if not waiting or order.erased_at is not None or not order.is_confirmed:
        if _resolved_by(order, source, why):
            return unchanged(order)
        raise NothingToResolve(f"{order.reference} is not waiting for support: it is {_stage(order)}")
    corrected = replace(delivery, email=order.delivery.email, contact_consent=order.delivery.contact_consent)
    effects = {Effect.EMAIL_SENDING_AGAIN} if order.delivery.email else set()
    return _next_fulfilment(order, source, now, change, effects, reason=what, delivery=corrected)


def support_changes_address(
    order: Order, delivery: DeliveryDetails, source: Source, now: datetime, why: str
) -> Outcome:
    """Support gives a new name and address for the holder (who phoned, or wrote): for an order
    the kit maker rejected or got back, the kit is sent again there (`resolve_with_new_address`);
    otherwise it is the holder's own change (`change_address`, refused once the kit maker has
    accepted it). `order` carries its delivery details in clear."""
    if order.fulfilment in (FulfilmentState.REJECTED, FulfilmentState.RETURNED) or _resolved_by(order, source, why):
        return resolve_with_new_address(order, delivery, source, now, why)
    return change_address(order, delivery, source, now, why)


def _resolved_by(order: Order, source: Source, why: str) -> bool:
    done = tuple(f"{kind} order sent again to a corrected address by support: {why}; " for kind in _RESOLVED)
    return any(e.actor == source.actor and e.change.startswith(done) for e in order.history)


# -- Data protection --------------------------------------------------------------------------------

ERASED = "[erased]"


def erase_personal_data(order: Order, source: Source, now: datetime, why: str) -> Outcome:
    """Name, address and email go; the reference, the money and the states (what finance and the
    audit trail need) stay. An order not yet dispatched is ended first, in the same write, as no
    kit can be posted without an address: an unpaid one is cancelled and its Checkout Session
    closed; a confirmed one is cancelled (the kit maker's cancellations list shows it if it was
    released) and what Stripe holds of its payment refunded in full. Either way the certificate
    gets its kit back. Idempotent: an erased order is left as it is."""
    if order.erased_at is not None:
        return unchanged(order)
    ended, effects, change = _end_for_erasure(order, now)
    blank = DeliveryDetails(
        full_name=ERASED,
        address_line_1=ERASED,
        address_line_2="",
        town=ERASED,
        postcode="",
        email="",
        contact_consent=False,
    )
    change = f"personal data erased ({why})" + change
    return record_change(order, source, now, change, effects, delivery=blank, erased_at=now, **ended)


def erase_when_due(order: Order, retention: timedelta, now: datetime) -> Outcome:
    """The retention purge's erasure, decided again from the order itself: the index that listed it
    holds the date its last write computed, and an order kept for support since (a rejection that
    waits, written before rejections waited) is left as it is."""
    due = order.personal_data_until(retention)
    if due is None or due > now:
        return unchanged(order)
    return erase_personal_data(order, Source("system:retention"), now, f"kept {retention.days} days")


def _end_for_erasure(order: Order, now: datetime) -> tuple[dict[str, Any], set[Effect], str]:
    """What ending an order not yet dispatched takes: its fields, its effects, the log's words."""
    cancelled = {"state": OrderState.CANCELLED, "fulfilment": FulfilmentState.CANCELLED, "cancelled_at": now}
    if order.awaits_payment:
        unpaid = {"payment": PaymentState.NOT_TAKEN, "payment_processing": False, "hold_until": None}
        closes = order.checkout_session_id is not None and not order.payment_processing
        effects = {Effect.RELEASE_CLAIM} | ({Effect.CLOSE_CHECKOUT} if closes else set())
        return {**cancelled, **unpaid}, effects, "; the unpaid order cancelled, any later payment refunded"
    if order.is_confirmed and order.fulfilment in BEFORE_DISPATCH:
        if order.payment in REFUNDABLE:
            return cancelled, {Effect.RELEASE_CLAIM, Effect.REFUND_IN_FULL}, "; cancelled before dispatch, refunded"
        return cancelled, {Effect.RELEASE_CLAIM}, "; cancelled before dispatch"
    return {}, set(), ""


TRANSITIONS = (
    Transition.row("place_order", "the holder confirms their answers", "holder", Effect.RELEASE_TO_MANUFACTURER),
    Transition.row("open_checkout", "a Checkout Session is opened for a paid order", "system"),
    Transition.row("abandon_checkout", "no Checkout Session could be opened", "system", Effect.RELEASE_CLAIM),
    Transition.row(
        "accept_payment",
        "Checkout says paid (webhook, return or sweep)",
        "stripe",
        Effect.RELEASE_TO_MANUFACTURER,
        Effect.RECLAIM,
        Effect.REFUND_IN_FULL,
    ),
    Transition.row(
        "pay_as_expected", "the common case of accept_payment, in one write", "stripe", Effect.RELEASE_TO_MANUFACTURER
    ),
    Transition.row("note_processing", "Checkout completed, payment confirms later", "stripe"),
    Transition.row("fail_payment", "an asynchronous payment failed", "stripe", Effect.RELEASE_CLAIM),
    Transition.row("expire_checkout", "the session lapsed unpaid (webhook or sweep)", "stripe", Effect.RELEASE_CLAIM),
    Transition.row("reconcile_money", "a refund or dispute changed Stripe's view of the money", "stripe, operator"),
    Transition.row("release", "the fulfilment message went to the kit maker", "system", Effect.EMAIL_CONFIRMATION),
    Transition.row("accept", "the kit maker accepts the order", "manufacturer"),
    Transition.row("dispatch", "the kit maker posted the kit", "manufacturer", Effect.EMAIL_DISPATCH),
    Transition.row("reject", "the kit maker cannot fulfil the order", "manufacturer", Effect.EMAIL_REJECTED),
    Transition.row("report_returned", "a posted kit came back to the kit maker", "manufacturer", Effect.EMAIL_RETURNED),
    Transition.row("acknowledge_cancellation", "the kit maker has seen a cancellation", "manufacturer"),
    Transition.row("withhold_release", "the fulfilment message breaks its schema: not sent", "system"),
    Transition.row(
        "cancel_by_holder",
        "the holder cancels before dispatch, having proved the certificate again",
        "holder",
        Effect.RELEASE_CLAIM,
        Effect.CLOSE_CHECKOUT,
        Effect.REFUND_IN_FULL,
        Effect.EMAIL_CANCELLATION,
    ),
    Transition.row(
        "request_replacement",
        "the holder reports the kit has not arrived, having proved the certificate again",
        "holder",
        Effect.EMAIL_REPLACEMENT_REQUESTED,
    ),
    Transition.row(
        "approve_replacement",
        "support sends a replacement: the next fulfilment of the order",
        "operator",
        Effect.RELEASE_TO_MANUFACTURER,
        Effect.EMAIL_REPLACEMENT_APPROVED,
    ),
    Transition.row(
        "decline_replacement",
        "support declines a report of a kit not arrived",
        "operator",
        Effect.EMAIL_REPLACEMENT_DECLINED,
    ),
    Transition.row(
        "change_address",
        "the holder changes the delivery address before acceptance, having proved the certificate again",
        "holder, operator",
        Effect.EMAIL_ADDRESS_CHANGED,
        Effect.SEND_AMENDMENT,
    ),
    Transition.row(
        "support_changes_address",
        "support gives a holder's new address: a rejected or returned order is sent again, any other changed",
        "operator",
        Effect.EMAIL_ADDRESS_CHANGED,
        Effect.SEND_AMENDMENT,
        Effect.RELEASE_TO_MANUFACTURER,
        Effect.EMAIL_SENDING_AGAIN,
    ),
    Transition.row("record_amendment_sent", "the queue took the address amendment", "system"),
    Transition.row("acknowledge_amendment", "the kit maker has seen an address amendment", "manufacturer"),
    Transition.row(
        "resend_email",
        "support asks for an email again",
        "operator",
        Effect.EMAIL_CONFIRMATION,
        Effect.EMAIL_DISPATCH,
    ),
    Transition.row(
        "resolve_by_cancelling",
        "support ends a rejected or returned order",
        "operator",
        Effect.RELEASE_CLAIM,
        Effect.REFUND_IN_FULL,
        Effect.EMAIL_CANCELLATION,
    ),
    Transition.row(
        "resolve_with_new_address",
        "support corrects a rejected or returned order's address and sends it again",
        "operator",
        Effect.RELEASE_TO_MANUFACTURER,
        Effect.EMAIL_SENDING_AGAIN,
    ),
    Transition.row(
        "erase_personal_data",
        "retention ran out, or an operator erases",
        "system, operator",
        Effect.RELEASE_CLAIM,
        Effect.CLOSE_CHECKOUT,
        Effect.REFUND_IN_FULL,
    ),
    Transition.row(
        "erase_when_due",
        "the retention purge, checked again against the order",
        "system",
        Effect.RELEASE_CLAIM,
        Effect.CLOSE_CHECKOUT,
        Effect.REFUND_IN_FULL,
    ),
)
