"""Storage limitation: the recipient's name and address are kept only as long as returns need,
and erased on request; the financial record (reference, money, states, log) stays."""

from __future__ import annotations

import logging
from datetime import timedelta

from ..domain.changes import Source
from ..domain.lifecycle import erase_personal_data, erase_when_due
from ..domain.orders import Order
from .dependencies import Dependencies
from .changes import apply_change

log = logging.getLogger("tracekit")


def erase_order(reference: str, why: str, operator: str, deps: Dependencies) -> Order:
    """An erasure request, by order reference (the holder's right to erasure, or a support need).
    An order not yet dispatched is ended first (`erase_personal_data`): cancelled, its checkout
    closed or its payment refunded in full. Raises PaymentServiceUnavailable if Stripe could not
    take the refund: the order is erased and cancelled, and the same request again makes the refund."""
    why = " ".join(why.split())[:200] or "erasure request"
    order = apply_change(
        reference, lambda o: erase_personal_data(o, Source(f"operator:{operator}"), deps.clock(), why), deps
    )
    log.info("personal data erased from order %s", reference)
    return order


def purge_personal_data(deps: Dependencies) -> int:
    """Scheduled, daily: every order past its retention loses its personal data."""
    erased = 0
    retention = timedelta(days=deps.settings.retention_days)
    for reference in deps.orders.erasure_due(deps.clock()):
        order = apply_change(reference, lambda o: erase_when_due(o, retention, deps.clock()), deps)
        erased += order.erased_at is not None
    log.info("retention purge erased %d orders", erased)
    return erased
