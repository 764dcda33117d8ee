"""The audit log's entry: who did what, when, on which order, and the reason they typed. Pure.

Entries are only ever added (the console's role may put and query, never update or delete);
an entry names staff and orders, never a holder's personal data."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_REASON = 500
_ACTION = re.compile(r"[a-z][a-z_-]*(\.[a-z][a-z_-]*)*")


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # the staff user's Cognito username (or what was typed, for a refused sign-in)
    action: str  # dotted: "signin", "order.view", "order.refund", "finance.reconciliation.download"
    entry_id: str
    order_reference: str | None = None
    reason: str | None = None
    detail: tuple[tuple[str, str], ...] = ()

    @property
    def details(self) -> dict[str, str]:
        return dict(self.detail)


def new_entry(
    at: datetime,
    actor: str,
    action: str,
    *,
    order_reference: str | None = None,
    reason: str | None = None,
    detail: dict[str, str] | None = None,
) -> AuditEntry:
    if at.tzinfo is None:
        raise ValueError("an audit entry's time must be timezone-aware")
    if not _ACTION.fullmatch(action):
        raise ValueError("an audit action is a dotted lower-case word")
    reason = " ".join(reason.split())[:MAX_REASON] if reason else None
    return AuditEntry(
        at=at.astimezone(timezone.utc),
        actor=actor.strip()[:200] or "-",
        action=action,
        entry_id=secrets.token_hex(8),
        order_reference=order_reference,
        reason=reason or None,
        detail=tuple(sorted((str(k), str(v)[:200]) for k, v in (detail or {}).items())),
    )
