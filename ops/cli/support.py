"""Support: the orders that need a person, one order in full, resending an email, resolving a
rejected or returned order, and deciding on a replacement for a kit that has not arrived."""

from __future__ import annotations

import click

from ops.cli.common import dependencies, echo, shown
from ops.cli.orders import found_order, print_log, print_order


@click.group()
def support() -> None:
    """Orders that need a person (no personal data unless asked for)."""


@support.command("list")
def list_cases() -> None:
    """Rejected and returned orders (paid ones said so), reports of a kit that has not arrived
    (replacement requests) and fulfilments stuck after STUCK_AFTER_DAYS, oldest first: reference,
    why, since when. Nothing names the holder."""
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
    """An order's states, money, fulfilment id (and earlier ones), the kit maker's reason for a
    rejection, a replacement request, and its log."""
    from chalicelib.domain.times import to_iso

    deps = dependencies()
    found = found_order(order_reference, deps)
    print_order(found, log=False)
    echo(f"fulfilment id {found.fulfilment_id}")
    for earlier in found.earlier_fulfilments:
        dispatched = f", dispatched {to_iso(earlier.dispatch.dispatched_at)}" if earlier.dispatch else ""
        why = f" ({earlier.reason})" if earlier.reason else ""
        echo(f"earlier fulfilment {earlier.fulfilment_id}: {earlier.state.value}{dispatched}{why}")
    if found.replacement_open and found.replacement_requested_at:
        echo(f"replacement requested {to_iso(found.replacement_requested_at)}: the holder confirmed the address")
    if found.replacement_decline_reason:
        echo(f"replacement declined: {shown(found.replacement_decline_reason)}")
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
    from chalicelib.domain.errors import NothingToResend
    from chalicelib.services.support import resend

    deps = dependencies()
    found = found_order(order_reference, deps)
    order = _decided(
        lambda: resend(found.reference, kind, operator, reason, deps), found, NothingToResend, "not resent"
    )
    if len(order.history) == len(found.history):
        echo(f"{order.reference}: this {kind} email was already resent for this reason; nothing more sent")
        return
    echo(f"{order.reference}: {kind} email resent (see: ops support show {order.reference})")


@support.command("resolve")
@click.argument("order_reference")
@click.option("--cancel", "cancel", is_flag=True, help="Cancel the order; a paid one is refunded in full.")
@click.option(
    "--new-address",
    "new_address",
    is_flag=True,
    help="Send it again to a corrected name and address, asked for on the terminal (never on the command line).",
)
@click.option("--operator", envvar="USER", required=True, help="Who is resolving (defaults to $USER).")
@click.option("--reason", required=True, help="Why, for the order's log.")
def resolve_command(order_reference: str, cancel: bool, new_address: bool, operator: str, reason: str) -> None:
    """Resolve an order the kit maker rejected or got back, recorded in the order's log. Choose
    one way: --cancel (cancelled, refunded in full if paid, the certificate may order again, the
    holder emailed) or --new-address (the corrected name and address are asked for, checked as the
    order journey checks them, and the order goes to the kit maker again as its next fulfilment,
    F-…-n; the holder is emailed). The same command again sends and refunds nothing more."""
    if cancel == new_address:
        raise click.UsageError("choose one way to resolve it: --cancel or --new-address")
    if cancel:
        _resolve_by_cancelling(order_reference, operator, reason)
    else:
        _resolve_with_new_address(order_reference, operator, reason)


def _resolve_with_new_address(order_reference: str, operator: str, reason: str) -> None:
    from chalicelib.domain.delivery import parse_delivery_details
    from chalicelib.domain.errors import InvalidInput, NothingToResolve
    from chalicelib.services.support import resolve_new_address

    deps = dependencies()
    found = found_order(order_reference, deps)
    asked = {
        "full_name": click.prompt("Full name"),
        "address_line_1": click.prompt("Address line 1"),
        "address_line_2": click.prompt("Address line 2", default="", show_default=False),
        "town": click.prompt("Town or city"),
        "postcode": click.prompt("Postcode"),
    }
    try:
        delivery = parse_delivery_details(asked)
    except InvalidInput as exc:
        raise click.ClickException("not resolved: " + "; ".join(exc.errors.values())) from None
    send_again = lambda: resolve_new_address(found.reference, delivery, operator, reason, deps)  # noqa: E731
    order = _decided(send_again, found, NothingToResolve, "not resolved")
    if len(order.history) == len(found.history):
        echo(f"{order.reference}: already sent again for this reason; nothing more done")
        return
    echo(f"{order.reference}: sent again to the corrected address as {order.fulfilment_id}")


def _resolve_by_cancelling(order_reference: str, operator: str, reason: str) -> None:
    from chalicelib.domain.errors import NothingToResolve, OrderNotFound, PaymentServiceUnavailable
    from chalicelib.services.support import resolve_cancel

    deps = dependencies(uses_stripe=True)
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


@support.command("approve-replacement")
@click.argument("order_reference")
@click.option("--operator", envvar="USER", required=True, help="Who is approving (defaults to $USER).")
@click.option("--reason", required=True, help="Why, for the order's log.")
@click.option("--admin", is_flag=True, help="An admin's override: a further replacement for an order that had one.")
def approve_replacement_command(order_reference: str, operator: str, reason: str, admin: bool) -> None:
    """Send a replacement kit (the order's next fulfilment, at no charge) for an open report that
    the kit has not arrived; the holder is emailed. One per order unless --admin. The same command
    again sends nothing more."""
    from chalicelib.services.support import approve

    deps = dependencies()
    found = found_order(order_reference, deps)
    order = _decided(lambda: approve(found.reference, operator, reason, deps, admin_override=admin), found)
    if len(order.history) == len(found.history):
        echo(f"{order.reference}: this replacement was already approved; nothing more sent")
        return
    echo(f"{order.reference}: replacement approved as {order.fulfilment_id} (see: ops support show {order.reference})")


@support.command("decline-replacement")
@click.argument("order_reference")
@click.option("--operator", envvar="USER", required=True, help="Who is declining (defaults to $USER).")
@click.option("--reason", required=True, help="Why: recorded in the log and emailed to the holder in these words.")
def decline_replacement_command(order_reference: str, operator: str, reason: str) -> None:
    """Decline an open report that the kit has not arrived; the holder is emailed the reason."""
    from chalicelib.services.support import decline

    deps = dependencies()
    found = found_order(order_reference, deps)
    order = _decided(lambda: decline(found.reference, operator, reason, deps), found)
    if len(order.history) == len(found.history):
        echo(f"{order.reference}: this replacement was already declined; nothing more sent")
        return
    echo(f"{order.reference}: replacement declined; the holder is told why")


def _decided(decide, found, refused: type[Exception] | None = None, not_done: str = "not done"):
    """An operator's action on `found`, its refusals as one clear line each (exit 1): no such
    order, or `refused` (by default the lifecycle's FulfilmentConflict) prefixed with `not_done`."""
    from chalicelib.domain.errors import FulfilmentConflict, OrderNotFound

    refusal = refused or FulfilmentConflict
    try:
        return decide()
    except OrderNotFound:
        raise click.ClickException(f"no order {shown(found.reference)}") from None
    except refusal as exc:
        raise click.ClickException(f"{not_done}: {exc}") from None
