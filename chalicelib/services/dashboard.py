"""The campaign dashboard: its figures for a period, read from the creation index (nothing
personal) and the fulfilment health check (stuck fulfilments and dead letters, now)."""

from __future__ import annotations

from ..domain.dashboard import CampaignFigures, campaign_figures
from ..domain.reconciliation import Period
from .dependencies import Dependencies
from .manufacturer import fulfilment_health


def campaign_dashboard(period: Period, deps: Dependencies) -> CampaignFigures:
    facts = list(deps.finance_orders.campaign_created_in(period))
    health = fulfilment_health(deps, publish=False)
    return campaign_figures(facts, period, deps.settings.letters_sent, len(health.stuck), health.dead_letters)
