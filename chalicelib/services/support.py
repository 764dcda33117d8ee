"""Support's work: the orders that need a person, and what an operator does to one.

The list comes from sparse indexes alone (rejected and returned fulfilments, reports of a kit that
has not arrived, and the stuck ones the health check
finds), so it names no one; an operator's action is a lifecycle transition applied like any other,
logged as `operator:<name>` with the reason given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ..domain.changes import Outcome, Source
from ..domain.delivery import DeliveryDetails
from ..domain.lifecycle import (
    approve_replacement,
    decline_replacement,
    resend_email,
    resolve_by_cancelling,
    resolve_with_new_address,
    support_changes_address,
)
from ..domain.orders import MONEY_TAKEN, FulfilmentState, Order
from ..domain.references import order_reference_of
from .changes import apply_change
from .dependencies import Dependencies
from .manufacturer import fulfilment_health


@dataclass(frozen=True)
class SupportCase:
    """One line of the work list: which order, why it needs a person, and since when."""

    reference: str
    why: str
    since: datetime


def support_cases(deps: Dependencies) -> list[SupportCase]:
    """Rejected and returned orders (those with money taken said so) and stuck fulfilments, oldest first."""
    cases = []
    for reference, since in deps.orders.needing_support():
        order = deps.orders.get(reference)
        why = _why_on_list(order)
        cases.append(SupportCase(reference, why, since))
    for fulfilment_id in fulfilment_health(deps, publish=False).stuck:
        stuck = order_reference_of(fulfilment_id)
        if stuck is None:
            continue
        released = deps.orders.get(stuck).released_at or deps.clock()
        cases.append(SupportCase(stuck, f"not dispatched after {deps.settings.stuck_after_days} days", released))
    return sorted(cases, key=lambda case: (case.since, case.reference))


def find_by_recipient(surname: str, postcode: str, deps: Dependencies) -> list[Order]:
    """The orders whose recipient has this surname and delivery postcode (Orders.find_by_recipient:
    a keyed index, nothing opened), oldest first; erased orders are never among them."""
    found = [deps.orders.get(reference) for reference in deps.orders.find_by_recipient(surname, postcode)]
    return sorted(found, key=lambda order: (order.created_at, order.reference))


def _why_on_list(order: Order) -> str:
    if order.replacement_open:
        return "replacement requested: kit not arrived"
    what = "returned to sender" if order.fulfilment is FulfilmentState.RETURNED else "rejected"
    return f"paid order {what}" if order.payment in MONEY_TAKEN else what


def resend(reference: str, kind: str, operator: str, why: str, deps: Dependencies) -> Order:
    """Send the holder's confirmation or dispatch email again. Raises OrderNotFound, NothingToResend."""
    source = Source(f"operator:{operator}")
    return apply_change(reference, lambda order: resend_email(order, kind, source, deps.clock(), why), deps)


def resolve_cancel(reference: str, operator: str, why: str, deps: Dependencies) -> Order:
    """End a rejected or returned order: cancelled, a paid one refunded in full, the holder told.
    The same command again makes any refund a crash left owed, and nothing more. Raises
    OrderNotFound, NothingToResolve, PaymentServiceUnavailable (the refund stays owed)."""
    source = Source(f"operator:{operator}")
    return apply_change(reference, lambda order: resolve_by_cancelling(order, source, deps.clock(), why), deps)


def resolve_new_address(
    reference: str, delivery: DeliveryDetails, operator: str, why: str, deps: Dependencies
) -> Order:
    """Send a rejected or returned order again, to a corrected name and address (checked as the
    order journey checks them), as the order's next fulfilment. The same command again sends
    nothing more. Raises OrderNotFound, NothingToResolve."""
    source = Source(f"operator:{operator}")
    decide = lambda order: resolve_with_new_address(order, delivery, source, deps.clock(), why)  # noqa: E731
    return apply_change(reference, decide, deps)


def change_address(reference: str, delivery: DeliveryDetails, operator: str, why: str, deps: Dependencies) -> Order:
    """Support changes the delivery name and address for the holder (`support_changes_address`:
    an order waiting for support is sent again there; otherwise the holder's own change, with an
    amendment to the kit maker if released). Raises OrderNotFound, AddressNotChangeable."""
    source = Source(f"operator:{operator}")

    def decide(latest: Order) -> Outcome:
        opened = replace(latest, delivery=deps.orders.delivery_of(latest))  # compared and kept in clear
        return support_changes_address(opened, delivery, source, deps.clock(), why)

    return apply_change(reference, decide, deps)


def approve(reference: str, operator: str, why: str, deps: Dependencies, admin_override: bool = False) -> Order:
    """Send a replacement for a kit the holder reports has not arrived (the order's next
    fulfilment). Raises OrderNotFound, FulfilmentConflict (no open report; a second replacement
    without an admin's override)."""
    source = Source(f"operator:{operator}")
    return apply_change(
        reference, lambda order: approve_replacement(order, source, deps.clock(), why, admin_override), deps
    )


def decline(reference: str, operator: str, why: str, deps: Dependencies) -> Order:
    """Decline a report of a kit not arrived; the holder is emailed `why`. Raises OrderNotFound,
    FulfilmentConflict (no open report)."""
    source = Source(f"operator:{operator}")
    return apply_change(reference, lambda order: decline_replacement(order, source, deps.clock(), why), deps)
