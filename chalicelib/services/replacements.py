"""The holder's side of a kit that has not arrived: what the status page offers, and the report.

Support's side (approving or declining) is services.support; both are lifecycle transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.changes import Source
from ..domain.delivery import masked_line
from ..domain.errors import InvalidInput
from ..domain.lifecycle import request_replacement
from ..domain.orders import FulfilmentState, Order
from .changes import apply_change
from .dependencies import Dependencies
from .ordering import proved_order

CONFIRM_ADDRESS_MESSAGE = "Confirm that the address is correct"


@dataclass(frozen=True)
class ReplacementOffer:
    """What the status page says of a posted kit: from when it may be reported missing and, once it
    may, the address a replacement would go to (for the holder to confirm)."""

    allowed_from: datetime
    allowed: bool
    address_lines: tuple[str, ...] = ()


def replacement_offer(order: Order, deps: Dependencies) -> ReplacementOffer | None:
    """None when there is nothing to offer: not posted, already reported, or ended otherwise."""
    allowed_from = order.replacement_allowed_from(deps.settings.replacement_after_days)
    if allowed_from is None or order.replacement_open or order.erased_at is not None:
        return None
    if order.fulfilment is not FulfilmentState.DISPATCHED or _decided(order):
        return None
    if deps.clock() < allowed_from:
        return ReplacementOffer(allowed_from, allowed=False)
    # The status page opens to an order reference and a postcode, both printed on the parcel, before
    # the certificate is proved: the name and street are shown masked, enough to recognise.
    d = deps.orders.delivery_of(order)
    masked = tuple(masked_line(line) for line in (d.full_name, d.address_line_1, d.address_line_2) if line)
    lines = (*masked, d.town, d.postcode)
    return ReplacementOffer(allowed_from, allowed=True, address_lines=lines)


def _decided(order: Order) -> bool:
    """Support already decided on a report of this very kit."""
    asked = order.replacement_requested_at
    return asked is not None and order.dispatch is not None and asked > order.dispatch.dispatched_at


def report_missing_kit(
    order_reference: str,
    raw_reference: str,
    raw_postcode: str,
    address_confirmed: bool,
    deps: Dependencies,
    client_address: str,
) -> Order:
    """The holder reports their kit has not arrived, having proved the certificate again (the
    same check, refusal and lockout as ordering) and confirmed the address (lifecycle's
    `request_replacement`). Raises CertificateNotAccepted, InvalidInput, FulfilmentConflict."""
    if not address_confirmed:
        raise InvalidInput({"confirm_address": CONFIRM_ADDRESS_MESSAGE})
    order = proved_order(order_reference, raw_reference, raw_postcode, deps, client_address)
    days, now = deps.settings.replacement_after_days, deps.clock
    return apply_change(
        order.reference, lambda latest: request_replacement(latest, Source("holder"), now(), days), deps
    )
