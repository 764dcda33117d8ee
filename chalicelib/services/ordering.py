"""The holder's side: checking a certificate, placing or resuming an order, releasing it."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..domain.delivery import DeliveryDetails, parse_new_address
from ..domain.eligibility import Eligibility, EligibilityReason, decide_eligibility
from ..domain.errors import (
    CertificateNotAccepted,
    ConcurrentChange,
    InvalidInput,
    MailUnavailable,
    OrderAlreadyExists,
    OrderNotFound,
    OrderNotMatched,
    PaymentServiceUnavailable,
    QueueUnavailable,
)
from ..domain.changes import Effect, Outcome, Source
from ..domain.lifecycle import (
    abandon_checkout,
    cancel_by_holder,
    change_address,
    open_checkout as checkout_opened,
    outstanding,
    place_order,
)
from ..domain.money import Money
from ..domain.orders import MONEY_TAKEN, Order
from ..ports import CertificateLookup, CheckoutSession
from ..domain.references import (
    Postcode,
    new_order_reference,
    normalise_certificate_reference,
    normalise_order_reference,
    parse_postcode,
)
from ..domain.throttle import ADDRESS_LIMITS, REFERENCE_LIMITS, UNKNOWN_ADDRESS, Counters, address_key, reservation
from .dependencies import Dependencies
from .changes import apply_change, carry_out, save

log = logging.getLogger("tracekit")


@dataclass(frozen=True)
class CheckedCertificate:
    """The outcome of a passed certificate check, carried in the journey; no clear reference."""

    certificate_key: str
    price: Money
    reason: str


@dataclass(frozen=True)
class PlacedOrder:
    reference: str
    checkout_url: str | None  # None when no payment is (or is any longer) needed


def check_certificate(
    raw_reference: str, raw_postcode: str, deps: Dependencies, client_address: str = UNKNOWN_ADDRESS
) -> CheckedCertificate:
    """Two requests, whatever the outcome: the attempt's reservation, then the keyed lookup (the
    entry and its claim), then one constant-time compare. The reservation comes first and decides
    whether the attempt is evaluated at all: one at a limit (locked) is not, yet makes the same
    lookup and gets the same refusal as any other. Each refusal is published as a metric, with no
    personal data."""
    attempt = _attempt(raw_reference, raw_postcode, deps, client_address)
    try:
        if not attempt.evaluated:
            raise CertificateNotAccepted()
        eligibility = decide_eligibility(
            attempt.lookup.entry,
            attempt.postcode_mac,
            attempt.lookup.kits_claimed,
            attempt.postcode,
            deps.clock().date(),
            deps.settings.campaign,
        )
    except CertificateNotAccepted:
        _refused(attempt, deps)
        raise
    return CheckedCertificate(attempt.reference_key, eligibility.price, eligibility.reason.value)


@dataclass(frozen=True)
class _Attempt:
    reference_key: str
    postcode: Postcode
    postcode_mac: str
    evaluated: bool
    lookup: CertificateLookup


def _attempt(raw_reference: str, raw_postcode: str, deps: Dependencies, client_address: str) -> _Attempt:
    """The check's two requests: the attempt's reservation (which decides whether it is evaluated
    at all), then the keyed lookup, made either way."""
    reference, postcode = _parse_certificate_form(raw_reference, raw_postcode, deps)
    keys, now = deps.keys, deps.clock()
    reference_key = keys.reference_key(reference)
    subjects = (
        Counters(f"ref:{reference_key}", REFERENCE_LIMITS),
        Counters(f"ip:{keys.reference_key('ip:' + address_key(client_address))}", ADDRESS_LIMITS),
    )
    evaluated = deps.attempts.reserve(reservation(subjects, now))
    lookup = deps.register.find(reference_key)
    return _Attempt(reference_key, postcode, keys.postcode_mac(reference, postcode), evaluated, lookup)


def _refused(attempt: _Attempt, deps: Dependencies) -> None:
    deps.metrics.report({"CertificateCheckRefusals": 1, "CertificateCheckLockouts": int(not attempt.evaluated)})
    log.info("certificate check refused%s", "" if attempt.evaluated else " (locked)")


def prove_holder(
    order: Order | None,
    raw_reference: str,
    raw_postcode: str,
    deps: Dependencies,
    client_address: str = UNKNOWN_ADDRESS,
) -> None:
    """Before anything changes an order: the certificate again (reference and certificate
    postcode), with the order check's counters, lockout and identical refusal. It must be in the
    live register with that postcode and be the order's own; it need not still be current, nor have
    a kit left (its kit is this order). Raises CertificateNotAccepted."""
    attempt = _attempt(raw_reference, raw_postcode, deps, client_address)
    entry = attempt.lookup.entry
    postcode_matches = hmac.compare_digest(entry.postcode_mac if entry else "0" * 64, attempt.postcode_mac)
    own = hmac.compare_digest(attempt.reference_key.encode(), (order.certificate_key if order else "").encode())
    if not (attempt.evaluated and entry is not None and postcode_matches and own and order is not None):
        _refused(attempt, deps)
        raise CertificateNotAccepted()


def prove_certificate(raw_reference: str, raw_postcode: str, deps: Dependencies, client_address: str) -> str:
    """A certificate proved for something other than an order (the contact register): in the live
    register with that postcode and current, whatever its kits. The same counters, lockout and
    identical refusal as the order check. Returns its key; raises CertificateNotAccepted."""
    attempt = _attempt(raw_reference, raw_postcode, deps, client_address)
    entry = attempt.lookup.entry
    postcode_matches = hmac.compare_digest(entry.postcode_mac if entry else "0" * 64, attempt.postcode_mac)
    if not (attempt.evaluated and entry is not None and postcode_matches and entry.is_current(deps.clock().date())):
        _refused(attempt, deps)
        raise CertificateNotAccepted()
    return attempt.reference_key


def proved_order(
    order_reference: str, raw_reference: str, raw_postcode: str, deps: Dependencies, client_address: str
) -> Order:
    """The order a status page's form names, once its holder has proved the certificate again
    (prove_holder); an order reference that names no order is refused exactly as a wrong
    certificate is, after the same requests. Raises CertificateNotAccepted."""
    reference = normalise_order_reference(order_reference)
    try:
        order: Order | None = deps.orders.get(reference) if reference else None
    except OrderNotFound:
        order = None
    prove_holder(order, raw_reference, raw_postcode, deps, client_address)  # no order: refused the same
    assert order is not None
    return order


def cancel_order(
    order_reference: str, raw_reference: str, raw_postcode: str, deps: Dependencies, client_address: str
) -> Order:
    """The holder cancels their order from the status page, once they have proved the certificate
    again (`cancel_by_holder`: refunded in full if paid, the kit maker told, the kit back)."""
    order = proved_order(order_reference, raw_reference, raw_postcode, deps, client_address)
    now = deps.clock
    return apply_change(order.reference, lambda latest: cancel_by_holder(latest, Source("holder"), now()), deps)


def change_delivery_address(
    order_reference: str,
    raw_reference: str,
    raw_postcode: str,
    new_address: dict[str, str],
    deps: Dependencies,
    client_address: str,
) -> Order:
    """The holder changes the delivery address from the status page: the new address checked as the
    delivery page checks it (before any attempt is counted), then the certificate proved again, then
    `change_address` (an amendment to the kit maker if it was released, an email to the holder).
    The certificate's postcode is the form's `certificate_postcode` (its `postcode` is the new one)."""
    delivery = parse_new_address(new_address)
    try:
        order = proved_order(order_reference, raw_reference, raw_postcode, deps, client_address)
    except InvalidInput as exc:
        raise InvalidInput({_CERTIFICATE_FIELD.get(k, k): v for k, v in exc.errors.items()}) from None
    now = deps.clock

    def decide(latest: Order) -> Outcome:
        opened = replace(latest, delivery=deps.orders.delivery_of(latest))  # compared and kept in clear
        return change_address(opened, delivery, Source("holder"), now())

    return apply_change(order.reference, decide, deps)


_CERTIFICATE_FIELD = {"postcode": "certificate_postcode"}


def sweep_expired_attempts(deps: Dependencies) -> int:
    """Scheduled: attempt counters past their expiry go (DynamoDB's TTL is late, moto's absent)."""
    return deps.attempts.sweep(deps.clock())


def certificate_form_errors(raw_reference: str, raw_postcode: str, deps: Dependencies) -> dict[str, str]:
    """The certificate fields' messages, if they cannot be read (nothing counted, nothing looked up)."""
    try:
        _parse_certificate_form(raw_reference, raw_postcode, deps)
    except InvalidInput as exc:
        return exc.errors
    return {}


def _parse_certificate_form(raw_reference: str, raw_postcode: str, deps: Dependencies) -> tuple[str, Postcode]:
    errors: dict[str, str] = {}
    reference = postcode = None
    try:
        reference = normalise_certificate_reference(raw_reference, deps.settings.reference_rules)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        postcode = parse_postcode(raw_postcode)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors or reference is None or postcode is None:
        raise InvalidInput(errors)
    return reference, postcode


def confirm_order(
    checked: CheckedCertificate,
    delivery: DeliveryDetails,
    reference: str,
    deps: Dependencies,
    client_address: str = UNKNOWN_ADDRESS,
) -> PlacedOrder:
    """Place the order under the journey's reference, claiming the certificate in the same
    transaction. A second click (or a return visit) finds the order already there and continues
    it: the same open checkout session, a fresh one if it lapsed, or its confirmation.

    The delivery page's contact tick box is not kept on the order: placing it asks the contact
    register for a confirmation link to the order's email (services.contacts), once."""
    eligibility = Eligibility(checked.price, EligibilityReason(checked.reason))
    hold = timedelta(minutes=deps.settings.checkout_hold_minutes)
    kept = replace(delivery, contact_consent=False)
    placed = place_order(reference, checked.certificate_key, eligibility, kept, deps.clock(), hold)
    order = placed.order
    try:
        deps.orders.create_claiming_certificate(order, deps.settings.campaign.kits_per_certificate)
    except OrderAlreadyExists:
        return _continue(deps.orders.get(reference), checked, delivery, deps)
    log.info("order placed: %s (%s)", order.reference, "free" if order.is_free else "paid")
    if delivery.contact_consent and delivery.email:
        from .contacts import offer_registration  # contacts proves certificates with this module's check

        try:
            offer_registration(checked.certificate_key, delivery.email, deps, client_address)
        except MailUnavailable:  # the order stands; the holder can register from the start page
            log.error("contact confirmation for order %s not sent", order.reference)
    if order.awaits_payment:
        return PlacedOrder(order.reference, open_checkout(order, deps))
    _carry_out_or_leave_for_relay(order, placed.effects, deps)
    return PlacedOrder(order.reference, None)


def _continue(order: Order, checked: CheckedCertificate, delivery: DeliveryDetails, deps: Dependencies) -> PlacedOrder:
    if order.awaits_payment:
        if order.checkout_open_at(deps.clock()) or order.payment_processing:
            return PlacedOrder(order.reference, None if order.payment_processing else order.checkout_url)
        return PlacedOrder(order.reference, open_checkout(order, deps))
    if order.is_confirmed or order.payment in MONEY_TAKEN:  # the first click's process may have died
        _carry_out_or_leave_for_relay(order, outstanding(order), deps)
        return PlacedOrder(order.reference, None)
    # The order lapsed (expired, failed, abandoned) and gave its claim back: order afresh.
    return confirm_order(checked, delivery, new_order_reference(), deps)


def open_checkout(order: Order, deps: Dependencies) -> str:
    """A Checkout Session for the order: attempt 1 under the key `order-<ref>`, so a retried or
    doubled confirmation gets the same session; a lapsed one is closed and replaced."""
    now = deps.clock()
    attempt = order.checkout_attempt + 1
    if order.checkout_session_id:
        deps.payments.expire_checkout(order.checkout_session_id)
    base = deps.settings.app_base_url
    expires_at = now + timedelta(minutes=deps.settings.checkout_hold_minutes)
    try:
        session = deps.payments.start_checkout(
            order,
            f"{base}/order/payment-complete?session_id={{CHECKOUT_SESSION_ID}}",
            f"{base}/order/check-answers",
            expires_at,
            attempt,
        )
    except PaymentServiceUnavailable:
        apply_change(order.reference, lambda o: abandon_checkout(o, Source("system"), now), deps)
        raise
    return _record_checkout(order, session, expires_at, attempt, deps)


def _record_checkout(
    order: Order, session: CheckoutSession, expires_at: datetime, attempt: int, deps: Dependencies
) -> str:
    now = deps.clock()
    try:
        save(order, checkout_opened(order, session.id, session.url, expires_at, attempt, now), deps)
    except ConcurrentChange:
        latest = deps.orders.get(order.reference)  # the other click recorded the same session first
        if latest.checkout_session_id != session.id:
            raise
    return session.url


def find_order(reference: str, deps: Dependencies) -> Order:
    return deps.orders.get(reference)


def confirmation_email_to(order: Order, deps: Dependencies) -> str | None:
    """The address the confirmation goes to (opened from its seal), or None: no address, or mail off."""
    if deps.mailer is None or not order.delivery.email:
        return None
    return deps.orders.delivery_of(order).email or None


def look_up_order(raw_reference: str, raw_postcode: str, deps: Dependencies) -> Order:
    """The holder's status check: the order only for its reference *and* delivery postcode, with the
    same refusal (and the same constant-time compare) for an unknown reference or a wrong postcode."""
    errors: dict[str, str] = {}
    reference = normalise_order_reference(raw_reference)
    if reference is None:
        errors["reference"] = "Enter your order reference as shown on your confirmation, like TK-7K3MQ-9X2HD"
    try:
        postcode = str(parse_postcode(raw_postcode))
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors or reference is None:
        raise InvalidInput(errors)
    try:
        order: Order | None = deps.orders.get(reference)
    except OrderNotFound:
        order = None
    stored = deps.orders.delivery_of(order).postcode if order else "\x00"  # compared once opened
    if not hmac.compare_digest(stored.encode(), postcode.encode()) or order is None:
        raise OrderNotMatched()
    return order


def _carry_out_or_leave_for_relay(order: Order, effects: frozenset[Effect], deps: Dependencies) -> None:
    """The holder's order stands even if the queue is down: it stays confirmed and unreleased,
    which is what the relay looks for, and the holder still gets their confirmation. Likewise a
    refund still owed (an order its erasure ended) stays owed if Stripe is down: the holder's page
    says it is being refunded, never that they were not charged."""
    try:
        carry_out(order, effects, deps)
    except QueueUnavailable:
        log.error("fulfilment queue unavailable; order %s left for the relay", order.reference)
    except PaymentServiceUnavailable:
        log.error("Stripe unavailable; the refund owed on order %s left for the next touch", order.reference)
