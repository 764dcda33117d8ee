"""Emails to the holder, when they gave an address: the order confirmed, then the kit posted.

At most one of each per order, whatever retries or redeliveries bring. The confirmation goes from
the call that released the order (the release is a conditional write that succeeds once); the
dispatch email claims its kind on the order item (one conditional write) before it goes. A send
that fails is counted and logged, not retried; the order is unaffected. No email carries anything
about the certificate."""

from __future__ import annotations

import logging

from ..domain.errors import MailUnavailable
from ..domain.orders import Order
from .dependencies import Dependencies

log = logging.getLogger("tracekit")
CONFIRMATION, DISPATCH = "confirmation", "dispatch"


def send_confirmation(order: Order, deps: Dependencies) -> bool:
    """For the one call that released the order. True if the email went."""
    return _send(order, CONFIRMATION, deps)


def send_dispatch(order: Order, deps: Dependencies) -> bool:
    """After any dispatch report; only the first per order sends. True if the email went."""
    if not _wanted(order, deps) or not deps.orders.claim_notification(order.reference, DISPATCH):
        return False
    return _send(order, DISPATCH, deps)


def _wanted(order: Order, deps: Dependencies) -> bool:
    return deps.mailer is not None and bool(order.delivery.email)


def _send(order: Order, kind: str, deps: Dependencies) -> bool:
    if not _wanted(order, deps):
        return False
    from ..web.pages import render_email  # Jinja only when there is mail to write

    subject, body = render_email(
        f"{kind}.txt",
        order=order,
        price=order.amount.display(),
        dispatch=order.dispatch,
        base_url=deps.settings.app_base_url,
    )
    try:
        deps.mailer.send(order.delivery.email, subject, body)
    except MailUnavailable as exc:
        log.error("%s email for order %s not sent: %s", kind, order.reference, exc)
        deps.metrics.report({"EmailFailures": 1})
        return False
    log.info("%s email sent for order %s", kind, order.reference)
    return True
