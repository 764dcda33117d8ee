"""What the use cases need, built once per Lambda container by chalicelib.bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, TypeVar

from ..domain.register import RegisterKeys
from ..ports import (
    ApiKeys,
    AuditLog,
    Attempts,
    Contacts,
    EmailRenderer,
    Exports,
    FinanceOrders,
    FulfilmentQueue,
    Fulfilments,
    Ledger,
    Mailer,
    Metrics,
    Orders,
    Payments,
    Register,
    Reports,
    StaffDirectory,
    StaffSessions,
    StatementFiles,
)
from ..settings import Settings, required_secret


@dataclass
class Dependencies:
    settings: Settings
    register: Register
    attempts: Attempts  # the certificate check's attempt counters
    orders: Orders
    payments: Payments
    fulfilment_queue: FulfilmentQueue
    fulfilments: Fulfilments
    api_keys: ApiKeys
    metrics: Metrics
    ledger: Ledger
    finance_orders: FinanceOrders
    exports: Exports
    clock: Callable[[], datetime]
    reports: Reports  # finance's file writers
    statement_files: StatementFiles  # the kit maker's statement's writers
    emails: EmailRenderer  # the holder's emails' text (Jinja, imported only when one is written)
    contacts: Contacts  # the Firearms Enquiry Team's contact register
    mailer: Mailer | None = None  # None: no sender configured, no email
    staff_directory: StaffDirectory | None = None  # the staff console's user pool (its functions only)
    staff_sessions: StaffSessions | None = None
    audit: AuditLog | None = None  # the staff actions' append-only log (the console's functions)

    def staff_directory_required(self) -> StaffDirectory:
        return _configured(self.staff_directory, "the staff user pool")

    def staff_sessions_required(self) -> StaffSessions:
        return _configured(self.staff_sessions, "the staff sessions table")

    def audit_required(self) -> AuditLog:
        return _configured(self.audit, "the audit log")

    @property
    def keys(self) -> RegisterKeys:
        return RegisterKeys(required_secret(self.settings.register_key, "REGISTER_KEY"))


T = TypeVar("T")


def _configured(value: T | None, what: str) -> T:
    """The console's parts exist only where the console runs: a holder function reaching for one
    is a wiring mistake, said as such."""
    if value is None:
        raise RuntimeError(f"{what} is not configured in this function")
    return value
