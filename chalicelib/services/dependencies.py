"""What the use cases need, built once per Lambda container by chalicelib.bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..domain.register import RegisterKeys
from ..ports import (
    ApiKeys,
    Attempts,
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
    StatementFiles,
)
from ..settings import Settings


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
    mailer: Mailer | None = None  # None: no sender configured, no email

    @property
    def keys(self) -> RegisterKeys:
        return RegisterKeys(self.settings.register_key)
