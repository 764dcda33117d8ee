"""Use cases. Each takes its collaborators explicitly (built by chalicelib.bootstrap) and does no HTTP."""

from .dependencies import Dependencies
from .changes import apply_change, release_to_manufacturer
from .ordering import (
    CheckedCertificate,
    PlacedOrder,
    cancel_order,
    change_delivery_address,
    check_certificate,
    confirm_order,
    confirmation_email_to,
    find_order,
    look_up_order,
    sweep_expired_attempts,
    open_checkout,
)
from .payments import fulfil, fulfil_on_return, handle_stripe_webhook, refund_order, sweep_lapsed_holds
from .register import RegisterImport, prune_register, roll_back_register

__all__ = [
    "CheckedCertificate",
    "Dependencies",
    "PlacedOrder",
    "RegisterImport",
    "apply_change",
    "cancel_order",
    "change_delivery_address",
    "check_certificate",
    "confirm_order",
    "confirmation_email_to",
    "find_order",
    "look_up_order",
    "sweep_expired_attempts",
    "fulfil",
    "fulfil_on_return",
    "handle_stripe_webhook",
    "open_checkout",
    "prune_register",
    "refund_order",
    "release_to_manufacturer",
    "roll_back_register",
    "sweep_lapsed_holds",
]
