"""Copies of the emulator's state for the pages: the developer dashboard's view."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_emulator.constants import DASHBOARD_EVENT_LIMIT, DASHBOARD_ROW_LIMIT
from devstack.stripe_emulator.state import EmulatorState


@dataclass
class DashboardView:
    """Copies of what the developer dashboard shows; lists are newest first."""

    sessions: list[dict[str, Any]]
    payment_intents: list[dict[str, Any]]
    charges: dict[str, dict[str, Any]]
    disputes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    payouts: list[dict[str, Any]] = field(default_factory=list)
    # Transactions held by each payout shown.
    payout_sizes: dict[str, int] = field(default_factory=dict)
    # Per currency: (available, pending) pence not yet paid out.
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)


def build_dashboard_view(state: EmulatorState) -> DashboardView:
    """Copies of everything the dashboard shows, newest first (payments and payouts capped); hold the lock."""
    intents = list(itertools.islice(reversed(state.payment_intents.values()), DASHBOARD_ROW_LIMIT))
    charge_ids = {intent["latest_charge"] for intent in intents}
    payouts = list(itertools.islice(reversed(state.payouts.values()), DASHBOARD_ROW_LIMIT))
    return DashboardView(
        sessions=[copy.deepcopy(record.session) for record in reversed(state.records.values())],
        payment_intents=copy.deepcopy(intents),
        charges={charge_id: copy.deepcopy(state.charges[charge_id]) for charge_id in charge_ids if charge_id},
        disputes=copy.deepcopy(list(reversed(state.disputes.values()))),
        events=copy.deepcopy(state.events.newest_first()[:DASHBOARD_EVENT_LIMIT]),
        payouts=copy.deepcopy(payouts),
        payout_sizes={payout["id"]: state.ledger.payout_size(payout["id"]) for payout in payouts},
        balances=state.ledger.balances(state.now()),
    )
