"""Orders: a refund, and an order's states and history."""

from __future__ import annotations

import click

from ops.cli.common import dependencies, echo, is_stripe_error, shown, stripe_error_line


@click.command()
@click.argument("order_reference")
@click.option("--amount", type=click.IntRange(min=1), help="Pence to refund; the whole remainder if left out.")
@click.option("--reason", required=True, help="Why, for the order's log (kept in tracekit, not sent to Stripe).")
@click.option("--operator", envvar="USER", required=True, help="Who is refunding (defaults to $USER).")
def refund(order_reference: str, amount: int | None, reason: str, operator: str) -> None:
    """Refund an order through Stripe, in part (--amount) or in full.

    Running the same command again does nothing more: it is recognised from the order's log.
    A full refund before dispatch cancels the kit; after dispatch it does not."""
    from chalicelib.domain.errors import OrderNotFound, PaymentServiceUnavailable, RefundRefused
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services import refund_order

    reference = normalise_order_reference(order_reference)
    if reference is None:
        raise click.ClickException(f"{order_reference!r} is not an order reference (like TK-7K3MQ-9X2HD)")
    try:
        order = refund_order(reference, amount, reason, operator, dependencies(uses_stripe=True))
    except (OrderNotFound, RefundRefused, PaymentServiceUnavailable) as exc:
        raise click.ClickException(_say(exc)) from None
    except Exception as exc:
        if not is_stripe_error(exc):
            raise
        # Stripe refused this refund (another one, run at the same moment, took the money first):
        # nothing was refunded by this run.
        raise click.ClickException(
            f"{stripe_error_line(exc)}; nothing was refunded by this command (see: ops order show {reference})"
        ) from None
    echo(
        f"{order.reference}: payment {order.payment.value}, refunded {order.refunded_pence} pence, "
        f"fulfilment {order.fulfilment.value}"
    )


@click.group()
def order() -> None:
    """Orders: state and history (no personal data is shown)."""


@order.command("show")
@click.argument("order_reference")
def show_order(order_reference: str) -> None:
    """An order's three states and its append-only log, for support and finance."""
    print_order(found_order(order_reference))


def found_order(order_reference: str, deps=None):
    """The order a reference names (as typed, normalised when it can be), or the command's error."""
    from chalicelib.domain.errors import OrderNotFound
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services import find_order

    reference = normalise_order_reference(order_reference) or order_reference
    try:
        return find_order(reference, deps or dependencies())
    except OrderNotFound:
        raise click.ClickException(f"no order {shown(reference)}") from None


def print_order(found, log: bool = True) -> None:
    """An order's reference, money and three states, then its log: what `order show` prints."""
    from chalicelib.domain.times import to_iso

    echo(f"{found.reference}  created {to_iso(found.created_at)}  amount {found.amount.pence} {found.amount.currency}")
    echo(
        f"order {found.state.value}  payment {found.payment.value}  fulfilment {found.fulfilment.value}"
        f"  refunded {found.refunded_pence}" + (f"  flag {found.payment_flag}" if found.payment_flag else "")
    )
    if log:
        print_log(found)


def print_log(found) -> None:
    from chalicelib.domain.times import to_iso

    for entry in found.history:
        event = f"  [{entry.stripe_event_id}]" if entry.stripe_event_id else ""
        echo(f"  {to_iso(entry.at)}  {entry.actor:<18} {entry.change}{event}")


def _say(exc: Exception) -> str:
    from chalicelib.domain.errors import OrderNotFound, PaymentServiceUnavailable

    if isinstance(exc, OrderNotFound):
        return f"no order {exc}"
    if isinstance(exc, PaymentServiceUnavailable):
        return "Stripe could not be reached; nothing was refunded. Try again."
    return shown(exc)
