"""Personal data: erasing an order's recipient, and the contact list of holders who agreed."""

from __future__ import annotations

import csv

from pathlib import Path

import click

from ops.cli.common import dependencies
from ops.private_files import private_file


@click.command()
@click.argument("order_reference")
@click.option("--reason", required=True, help="Why (kept in the order's log; no personal data, please).")
@click.option("--operator", envvar="USER", required=True, help="Who is erasing (defaults to $USER).")
def erase(order_reference: str, reason: str, operator: str) -> None:
    """Erase the recipient's name, address and email from an order, keeping the financial record
    (reference, amounts, states and log) that finance needs. An order not yet dispatched cannot be
    posted without them, so it is ended first: an unpaid one is cancelled and its Checkout Session
    closed (a payment that still arrives is refunded); a paid one is cancelled (the kit maker sees
    it on its cancellations list) and refunded in full. Running it again changes nothing, except to
    make a refund Stripe could not take the first time."""
    from chalicelib.domain.errors import OrderNotFound, PaymentServiceUnavailable, RefundRefused
    from chalicelib.domain.references import normalise_order_reference
    from chalicelib.services.privacy import erase_order

    reference = normalise_order_reference(order_reference)
    if reference is None:
        raise click.ClickException(f"{order_reference!r} is not an order reference (like TK-7K3MQ-9X2HD)")
    try:
        order = erase_order(reference, reason, operator, dependencies(uses_stripe=True))
    except OrderNotFound:
        raise click.ClickException(f"no order {reference}") from None
    except (PaymentServiceUnavailable, RefundRefused):
        raise click.ClickException(
            f"{reference}: personal data erased and the order cancelled, but Stripe did not take its refund. "
            "Run the same command again to make the refund (nothing is refunded twice)."
        ) from None
    click.echo(
        f"{order.reference}: personal data erased; order {order.state.value}, fulfilment {order.fulfilment.value}, "
        f"payment {order.payment.value}, {order.amount.pence} pence ({order.refunded_pence} refunded)"
    )


@click.group()
def contacts() -> None:
    """The Firearms Enquiry Team's contact register: confirmed addresses, not withdrawn."""


@contacts.command("export")
@click.argument("output", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_contacts(output: Path) -> None:
    """Write the team's list to OUTPUT (CSV, mode 0600: email, consented_at, confirmed_at, in UTC).
    Only confirmed addresses not withdrawn; nothing else about the holders is in it."""
    from chalicelib.domain.times import to_iso
    from chalicelib.reports import neutralise
    from chalicelib.services.contacts import contact_list

    entries = contact_list(dependencies())
    try:
        with private_file(output, "w", newline="", encoding="utf-8") as handle:  # 0600, then renamed
            writer = csv.writer(handle)
            writer.writerow(["email", "consented_at", "confirmed_at"])
            writer.writerows([neutralise(email), to_iso(at), to_iso(confirmed)] for email, at, confirmed in entries)
    except FileExistsError:
        raise click.ClickException(
            f"{output}.part exists: another export is writing it, or one was interrupted (remove it and try again)"
        ) from None
    click.echo(f"{len(entries)} contact(s) written to {output}", err=True)
