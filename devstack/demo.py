"""The local stack's demo order: one paid order for a FICTITIOUS holder, placed at start-up
through the same services the holder's pages call and paid through the emulator (whose webhook
the running app handles), so that support has an order to find and refund, and finance a charge
and a refund to reconcile, on a fresh stack."""

from __future__ import annotations

from collections.abc import Mapping

from devstack.synthetic_register import DEMO_ORDER_HOLDER

DEMO_DELIVERY = {  # FICTITIOUS
    "full_name": "Alex Fictitious",
    "address_line_1": "1 Demo Street",
    "address_line_2": "",
    "town": "London",
    "postcode": DEMO_ORDER_HOLDER[1],
    "email": "alex.fictitious@example.invalid",
}


def place_demo_order(environment: Mapping[str, str], emulator) -> str:
    """The demo order's reference, once the emulator has paid it (and the app recorded the payment)."""
    from chalicelib import bootstrap, services
    from chalicelib.domain.delivery import parse_delivery_details
    from chalicelib.domain.references import new_order_reference

    deps = bootstrap.build(bootstrap.settings_from_environment(dict(environment)))
    checked = services.check_certificate(*DEMO_ORDER_HOLDER, deps)
    placed = services.confirm_order(checked, parse_delivery_details(DEMO_DELIVERY), new_order_reference(), deps)
    assert placed.checkout_url is not None  # nosec B101 - the demo holder pays
    emulator.pay(placed.checkout_url.rstrip("/").rsplit("/", 1)[-1])
    return placed.reference
