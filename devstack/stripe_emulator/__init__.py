"""A local Stripe emulator that the official ``stripe`` Python SDK can talk to.

It speaks the slice of the Stripe REST API that tracekit uses (Checkout
Sessions, Events, PaymentIntents, Charges, Refunds, Disputes, Balance
Transactions and Payouts), serves a
hosted checkout page with Pay, Decline and "pay by bank transfer" buttons, and
delivers webhooks signed exactly the way Stripe signs them, so the real webhook
verification code runs unchanged against it.

For testing the unhappy paths it can also settle bank transfers either way
(``settle_async``), refund and dispute payments the way the Stripe dashboard
would (``refund``, ``dispute``, ``close_dispute``) and pretend to be down or
slow (``fail_next_requests``, ``delay_next_requests``). A developer dashboard
at ``/_emulator`` offers the same controls in a browser.

For finance reconciliation every movement of money gets a balance transaction
with UK card pricing (charges, refunds, dispute withdrawals and reversals), and
``run_payout`` pays the available balance out. ``seed_paid_charges`` fills the
ledger directly for benchmarks.

Run it on its own with::

    python -m devstack.stripe_emulator --port 12111 --webhook-url URL --webhook-secret S

and point the SDK at it with
``stripe.StripeClient("sk_test_...", base_addresses={"api": emulator.base_url})``.

Only the standard library is used so it runs anywhere Python runs. Money is
always integer minor units (pence). Request bodies are never logged because
they carry buyers' email addresses.
"""

from __future__ import annotations

from devstack.stripe_emulator.cli import main
from devstack.stripe_emulator.emulator import StripeEmulator
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.forms import MalformedFormError, decode_stripe_form
from devstack.stripe_emulator.money import format_money
from devstack.stripe_emulator.transactions import card_fee
from devstack.stripe_emulator.views import DashboardView
from devstack.stripe_emulator.webhooks import sign_webhook_payload

__all__ = [
    "ApiError",
    "DashboardView",
    "MalformedFormError",
    "StripeEmulator",
    "card_fee",
    "decode_stripe_form",
    "format_money",
    "main",
    "sign_webhook_payload",
]
