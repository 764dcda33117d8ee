"""Emails to the holder, when they gave an address: the order confirmed, then the kit posted.

At most one of each per order, whatever retries or redeliveries bring. The confirmation goes from
the call that released the order (the release is a conditional write that succeeds once); the
dispatch email claims its kind on the order item (one conditional write) before it goes. A send
that fails is counted and logged, and the order goes on the sparse mail-retry index with its claim
released; the relay's schedule retries it (claiming first, so still at most one) at growing
intervals, and gives up after MAX_ATTEMPTS failures, counted for an alarm. The order itself is
never affected. No email carries anything about the certificate."""

from __future__ import annotations

import logging
from datetime import timedelta

from ..domain.errors import MailUnavailable
from ..domain.orders import Order
from .dependencies import Dependencies

log = logging.getLogger("tracekit")
CONFIRMATION, DISPATCH = "confirmation", "dispatch"
RETRY_STEP = timedelta(minutes=15)  # after the nth failure, wait n steps: 6 tries over about 4 hours
MAX_ATTEMPTS = 6


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


def retry_failed(deps: Dependencies) -> int:
    """Scheduled: send the emails whose last attempt failed and are due again. Each is claimed
    before it goes, so a retry racing a redelivered report still sends one. Returns how many went."""
    if deps.mailer is None:
        return 0
    sent = 0
    for reference, kinds, failures in deps.orders.notifications_due(deps.clock()):
        order = deps.orders.get(reference)
        for kind in sorted(kinds):
            if failures >= MAX_ATTEMPTS:
                log.error("%s email for order %s abandoned after %d failures", kind, reference, failures)
                deps.metrics.report({"EmailsAbandoned": 1})
            elif _wanted(order, deps) and deps.orders.claim_notification(reference, kind):
                if not _send(order, kind, deps, failures):
                    continue  # deferred again by _send
                sent += 1
            deps.orders.end_retry(reference, kind)  # sent, abandoned, erased, or already sent elsewhere
    return sent


def _send(order: Order, kind: str, deps: Dependencies, failures: int = 0) -> bool:
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
        log.error("%s email for order %s not sent (failure %d): %s", kind, order.reference, failures + 1, exc)
        deps.metrics.report({"EmailFailures": 1})
        deps.orders.defer_notification(order.reference, kind, deps.clock() + RETRY_STEP * (failures + 1))
        return False
    log.info("%s email sent for order %s", kind, order.reference)
    return True
