"""Use cases. Each takes its collaborators explicitly (built by chalicelib.bootstrap) and does no HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from .domain.delivery import DeliveryDetails
from .domain.eligibility import Eligibility, EligibilityReason, decide_eligibility
from .domain.errors import InvalidInput, OrderNotFound, PaymentMismatch, PaymentServiceUnavailable, QueueUnavailable
from .domain.fulfilment import fulfilment_message_for
from .domain.money import Money
from .domain.orders import Order, OrderState, PaymentState, place_order as new_order
from .domain.references import ReferenceRules, new_order_reference, normalise_certificate_reference, parse_postcode
from .domain.register import RegisterKeys, parse_register_row
from .ports import FulfilmentQueue, Orders, Payments, Register
from .settings import Settings

log = logging.getLogger("tracekit")


@dataclass
class Dependencies:
    """What the use cases need; built once per container by bootstrap."""

    settings: Settings
    register: Register
    orders: Orders
    payments: Payments
    fulfilment_queue: FulfilmentQueue
    clock: Callable[[], datetime]

    @property
    def keys(self) -> RegisterKeys:
        return RegisterKeys(self.settings.register_key)


@dataclass(frozen=True)
class CheckedCertificate:
    """The outcome of a passed certificate check, carried in the journey; no clear reference."""

    certificate_key: str
    price: Money
    reason: str


@dataclass(frozen=True)
class PlacedOrder:
    reference: str
    checkout_url: str | None  # None when no payment is needed


def check_certificate(raw_reference: str, raw_postcode: str, deps: Dependencies) -> CheckedCertificate:
    """One keyed lookup, one constant-time compare; every refusal looks the same."""
    reference, postcode = _parse_certificate_form(raw_reference, raw_postcode, deps)
    keys = deps.keys
    reference_key = keys.reference_key(reference)
    lookup = deps.register.find(reference_key)
    eligibility = decide_eligibility(
        lookup.entry,
        keys.postcode_mac(reference, postcode),
        lookup.kits_claimed,
        postcode,
        deps.clock().date(),
        deps.settings.campaign,
    )
    return CheckedCertificate(reference_key, eligibility.price, eligibility.reason.value)


def _parse_certificate_form(raw_reference: str, raw_postcode: str, deps: Dependencies):
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
    if errors:
        raise InvalidInput(errors)
    return reference, postcode


def place_order(checked: CheckedCertificate, delivery: DeliveryDetails, deps: Dependencies) -> PlacedOrder:
    """Claim the certificate and store the order in one transaction; then release it (free) or
    open a Stripe Checkout Session for it (paid)."""
    eligibility = Eligibility(checked.price, EligibilityReason(checked.reason))
    order = new_order(new_order_reference(), checked.certificate_key, eligibility, delivery, deps.clock())
    deps.orders.create_claiming_certificate(order, deps.settings.campaign.kits_per_certificate)
    log.info("order placed: %s (%s)", order.reference, "free" if order.is_free else "paid")
    if order.is_free:
        _release_or_leave_for_relay(order, deps)
        return PlacedOrder(order.reference, None)
    return PlacedOrder(order.reference, _open_checkout(order, deps))


def _open_checkout(order: Order, deps: Dependencies) -> str:
    base = deps.settings.app_base_url
    expires_at = deps.clock() + timedelta(minutes=deps.settings.checkout_hold_minutes)
    try:
        session = deps.payments.start_checkout(
            order,
            f"{base}/order/payment-complete?session_id={{CHECKOUT_SESSION_ID}}",
            f"{base}/order/check-answers",
            expires_at,
        )
    except PaymentServiceUnavailable:
        deps.orders.abandon(order.reference)
        raise
    deps.orders.record_checkout(order.reference, session)
    return session.url


def confirm_order(
    checked: CheckedCertificate, delivery: DeliveryDetails, placed_reference: str | None, deps: Dependencies
) -> PlacedOrder:
    """Confirming again returns the holder to the order they already placed (its open checkout
    session, or its confirmation); only an order that never went ahead is placed afresh."""
    if placed_reference:
        order = deps.orders.get(placed_reference)
        if order.payment is PaymentState.AWAITING and order.state is OrderState.PLACED and order.checkout_url:
            return PlacedOrder(order.reference, order.checkout_url)
        if order.state is OrderState.CONFIRMED:
            return PlacedOrder(order.reference, None)
    return place_order(checked, delivery, deps)


def find_order(reference: str, deps: Dependencies) -> Order:
    return deps.orders.get(reference)


def release_to_manufacturer(order: Order, deps: Dependencies) -> None:
    """Send the fulfilment message, then record that it went. A resend is deduplicated per order."""
    deps.fulfilment_queue.send(fulfilment_message_for(order, deps.settings.product_code))
    deps.orders.mark_released(order.reference, deps.clock())
    log.info("order released to manufacturer: %s", order.reference)


def _release_or_leave_for_relay(order: Order, deps: Dependencies) -> None:
    """The holder's order stands even if the queue is down: it stays confirmed and unreleased,
    which is what the relay looks for, and the holder still gets their confirmation."""
    try:
        release_to_manufacturer(order, deps)
    except QueueUnavailable:
        log.error("fulfilment queue unavailable; order %s left for the relay", order.reference)


def handle_stripe_webhook(payload: bytes, signature_header: str, deps: Dependencies) -> str:
    """Idempotent: the same event delivered twice changes the order once and sends one message.
    Returns what happened, for the log."""
    event = deps.payments.parse_webhook(payload, signature_header)
    if event.type != "checkout.session.completed" or event.payment_status != "paid" or not event.order_reference:
        return "ignored"
    try:
        if event.paid is None:
            raise PaymentMismatch("the event carries no amount")
        order = deps.orders.mark_paid_once(event.order_reference, event.id, event.paid, deps.clock())
    except OrderNotFound:
        log.warning("paid session for an unknown order (event %s)", event.id)
        return "unknown order"
    except PaymentMismatch:
        log.error("payment does not match order %s (event %s)", event.order_reference, event.id)
        return "flagged"
    if order.awaits_release:
        release_to_manufacturer(order, deps)
    return "recorded"


@dataclass
class ImportReport:
    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def import_register(
    rows: Iterable[tuple[int, dict[str, str]]],
    register: Register,
    keys: RegisterKeys,
    rules: ReferenceRules,
    on_row: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Validate every row; write the good ones in batches; report the bad ones by line number.

    A row is one item, fully validated before it is written, so nothing is half-written; the
    items are deterministic, so importing the same file again changes nothing."""
    report = ImportReport()
    seen: dict[str, int] = {}

    def valid_entries():
        for line, row in rows:
            on_row()
            entry = _entry_or_report(line, row, keys, rules, seen, report)
            if entry is not None:
                yield entry

    report.written = register.save_all(valid_entries())
    return report


def _entry_or_report(line, row, keys, rules, seen, report):
    try:
        entry = parse_register_row(row, rules).to_entry(keys)
    except InvalidInput as exc:
        report.rejected.append((line, "; ".join(f"{col}: {msg}" for col, msg in exc.errors.items())))
        return None
    if entry.reference_key in seen:
        report.rejected.append((line, f"certificate_reference: repeats line {seen[entry.reference_key]}"))
        return None
    seen[entry.reference_key] = line
    return entry
