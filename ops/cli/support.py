"""Support: the orders that need a person, one order in full, resending an email, resolving a
rejected or returned order."""

from __future__ import annotations

import click

from ops.cli.common import dependencies, echo, shown
from ops.cli.orders import found_order, print_log, print_order


@click.group()
def support() -> None:
    """Orders that need a person (no personal data unless asked for)."""


@support.command("list")
def list_cases() -> None:
    """Rejected orders (paid ones said so) and fulfilments stuck after STUCK_AFTER_DAYS, oldest
    first: reference, why, since when. Nothing names the holder."""
    from chalicelib.domain.times import to_iso
    from chalicelib.services.support import support_cases

    cases = support_cases(dependencies())
    echo(f"{len(cases)} order(s) need a person")
    for case in cases:
        echo(f"  {case.reference}  {case.why:<32} since {to_iso(case.since)}")


@support.command("show")
@click.argument("order_reference")
@click.option("--with-address", is_flag=True, help="Also show the delivery details (personal data: only when needed).")
def show_case(order_reference: str, with_address: bool) -> None:
    """An order's states, money, fulfilment id, the kit maker's reason for a rejection, and its log."""
    deps = dependencies()
    found = found_order(order_reference, deps)
    print_order(found, log=False)
    echo(f"fulfilment id {found.fulfilment_id}")
    if found.rejection_reason:
        echo(f"rejection reason: {shown(found.rejection_reason)}")
    if found.return_reason:
        echo(f"returned to sender: {shown(found.return_reason)}")
    if with_address:
        if found.erased_at is not None:
            echo("delivery details: erased")
        else:
            d = deps.orders.delivery_of(found)
            lines = [d.full_name, d.address_line_1, d.address_line_2, d.town, d.postcode]
            echo("delivery: " + ", ".join(line for line in lines if line))
            echo(f"email: {d.email or 'none given'}")
    print_log(found)


@support.command("resend")
@click.argument("order_reference")
@click.argument("kind", type=click.Choice(["confirmation", "dispatch"]))
@click.option("--operator", envvar="USER", required=True, help="Who is resending (defaults to $USER).")
@click.option("--reason", required=True, help="Why, for the order's log.")
def resend_command(order_reference: str, kind: str, operator: str, reason: str) -> None:
    """Send the holder's confirmation or dispatch email again, recorded in the order's log.
    The same command again (same operator and reason) sends nothing more."""
    from chalicelib.domain.errors import NothingToResend, OrderNotFound
    from chalicelib.services.support import resend

    deps = dependencies()
    found = found_order(order_reference, deps)
    try:
        order = resend(found.reference, kind, operator, reason, deps)
    except OrderNotFound:
        raise click.ClickException(f"no order {shown(found.reference)}") from None
    except NothingToResend as exc:
        raise click.ClickException(f"not resent: {exc}") from None
    if len(order.history) == len(found.history):
        echo(f"{order.reference}: this {kind} email was already resent for this reason; nothing more sent")
        return
    echo(f"{order.reference}: {kind} email resent (see: ops support show {order.reference})")


@support.command("resolve")
@click.argument("order_reference")
@click.option("--cancel", "cancel", is_flag=True, help="Cancel the order; a paid one is refunded in full.")
@click.option("--operator", envvar="USER", required=True, help="Who is resolving (defaults to $USER).")
@click.option("--reason", required=True, help="Why, for the order's log.")
def resolve_command(order_reference: str, cancel: bool, operator: str, reason: str) -> None:
    """Resolve an order the kit maker rejected or got back, recorded in the order's log. One way
    to resolve it must be chosen: --cancel (cancelled, refunded in full if paid, the certificate
    may order again, the holder emailed). The same command again refunds only what a failure left
    owed, and sends nothing more."""
    if not cancel:
        raise click.UsageError("choose how to resolve it: --cancel")
    _resolve_by_cancelling(order_reference, operator, reason)


def _resolve_by_cancelling(order_reference: str, operator: str, reason: str) -> None:
    from chalicelib.domain.errors import NothingToResolve, OrderNotFound, PaymentServiceUnavailable
    from chalicelib.services.support import resolve_cancel

    deps = dependencies()
    found = found_order(order_reference, deps)
    try:
        order = resolve_cancel(found.reference, operator, reason, deps)
    except OrderNotFound:
        raise click.ClickException(f"no order {shown(found.reference)}") from None
    except NothingToResolve as exc:
        raise click.ClickException(f"not resolved: {exc}") from None
    except PaymentServiceUnavailable:
        raise click.ClickException(
            f"{found.reference}: cancelled, but Stripe could not take the refund; run the same command again"
        ) from None
    if found.cancelled_by_support:
        echo(f"{order.reference}: already cancelled by support; nothing more done ({order.payment.value})")
        return
    echo(f"{order.reference}: cancelled, payment {order.payment.value} (see: ops support show {order.reference})")
