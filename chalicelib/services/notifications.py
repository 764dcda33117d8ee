"""Emails to the holder, when they gave an address: the order confirmed, then the kit posted.

An outbox on the order item. The write that makes an email due puts its kind in the order's mail
outbox in the same conditional write (the release for the confirmation, the dispatch for the
dispatch email), so no crash can lose it. A sender holds the outbox for a lease, sends, and takes
the kind out: the release's caller holds it from the release write itself (only one call
releases); anyone else claims it first (one conditional write that pushes its due time out).
The relay's schedule sends whatever is due: a failed send comes back after 15 minutes times its
failures, a claim whose sender died comes back when its lease ends. Six failures and it is given
up, counted for an alarm. The order itself is never affected.

Guarantee: each email is sent at least once once it can be, and at most once except in one window:
SES accepted it and the process died before the outbox was told, when the retry sends it again.
No email carries anything about the certificate.
"""

from __future__ import annotations

import logging
from typing import Iterable

from ..domain.errors import MailUnavailable
from ..domain.lifecycle import CLAIM_LEASE, MAX_ATTEMPTS, RETRY_STEP
from ..domain.orders import Order
from .dependencies import Dependencies

log = logging.getLogger("tracekit")


def send_due(reference: str, deps: Dependencies) -> int:
    """Send this order's due emails, if no one else is sending them. Returns how many went."""
    now = deps.clock()
    claimed = deps.orders.claim_due_notifications(reference, now, now + CLAIM_LEASE)
    if claimed is None:
        return 0
    order, kinds, failures = claimed
    return send_claimed(order, kinds, deps, failures)


def send_claimed(order: Order, kinds: Iterable[str], deps: Dependencies, failures: int = 0) -> int:
    """Send emails of the order's outbox that this caller holds. Returns how many went."""
    if deps.mailer is None:  # mail is switched off (no EMAIL_FROM): nothing will ever send these
        for kind in kinds:
            deps.orders.end_retry(order.reference, kind)
        return 0
    return sum(_send_or_settle(order, kind, failures, deps) for kind in sorted(kinds))


def send_all_due(deps: Dependencies) -> int:
    """Scheduled (with the relay): every order whose emails are due. Returns how many went."""
    due = deps.orders.notifications_due(deps.clock())
    return sum(send_due(reference, deps) for reference, _kinds, _failures in due)


def _send_or_settle(order: Order, kind: str, failures: int, deps: Dependencies) -> bool:
    """True if the email went. It leaves the outbox when sent, given up, or no longer wanted (the
    address was erased); a failed send stays in it, deferred by _send."""
    if failures >= MAX_ATTEMPTS:
        log.error("%s email for order %s abandoned after %d failures", kind, order.reference, failures)
        deps.metrics.report({"EmailsAbandoned": 1})
        sent = False
    elif not _wanted(order):
        sent = False
    elif not _send(order, kind, deps, failures):
        return False
    else:
        sent = True
    deps.orders.end_retry(order.reference, kind)
    return sent


def _wanted(order: Order) -> bool:
    return bool(order.delivery.email)


def _send(order: Order, kind: str, deps: Dependencies, failures: int) -> bool:
    subject, body = deps.emails.render(kind, order)
    if deps.mailer is None:  # send_claimed ended these already
        return False
    try:
        deps.mailer.send(deps.orders.delivery_of(order).email, subject, body)
    except MailUnavailable as exc:
        log.error("%s email for order %s not sent (failure %d): %s", kind, order.reference, failures + 1, exc)
        deps.metrics.report({"EmailFailures": 1})
        deps.orders.defer_notification(order.reference, kind, deps.clock() + RETRY_STEP * (failures + 1))
        return False
    log.info("%s email sent for order %s", kind, order.reference)
    return True
