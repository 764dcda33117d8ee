"""The manufacturer's side, seen from tracekit: what is stuck, and the relay."""

from __future__ import annotations

import sys

import click

from ops.cli.common import dependencies, echo


@click.group()
def fulfilment() -> None:
    """The manufacturer's side, seen from tracekit."""


@fulfilment.command("stuck")
@click.option("--days", type=click.IntRange(min=1), help="Overrides STUCK_AFTER_DAYS.")
def stuck(days: int | None) -> None:
    """Orders released but not dispatched after the configured days, and the dead-letter depth.
    Exit status 1 when there is anything to chase."""
    from dataclasses import replace

    from chalicelib.services.manufacturer import fulfilment_health

    deps = dependencies()
    if days is not None:
        deps.settings = replace(deps.settings, stuck_after_days=days)
    health = fulfilment_health(deps, publish=False)
    echo(
        f"{len(health.stuck)} released but not dispatched after {deps.settings.stuck_after_days} days; "
        f"{health.dead_letters} message(s) in the dead-letter queue"
    )
    for fulfilment_id in health.stuck:
        echo(f"  {fulfilment_id}")
    if health.stuck or health.dead_letters:
        sys.exit(1)


@fulfilment.command("relay")
def relay() -> None:
    """Send confirmed orders whose fulfilment message did not go (what the scheduled relay does)."""
    from chalicelib.services.manufacturer import relay_unsent

    echo(f"{relay_unsent(dependencies())} message(s) sent")
