"""The emulator's fixed settings: API version, defaults, limits, Stripe's reasons and UK card pricing."""

from __future__ import annotations

import logging
import string

# A fixed name, so logs read the same under `python -m` (where __name__ is "__main__").
LOGGER = logging.getLogger("devstack.stripe_emulator")

API_VERSION = "2024-06-20"
DEFAULT_WEBHOOK_SECRET = "whsec_local_emulator"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
DEFAULT_SWEEP_INTERVAL_SECONDS = 5.0
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
DEFAULT_SESSION_LIFETIME_SECONDS = 24 * 60 * 60
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
# Callers usually compute expires_at as "now + 30 min" a moment before the
# request arrives; a little slack stops that race from failing spuriously.
EXPIRY_CLOCK_SKEW_SECONDS = 5
MAX_BODY_BYTES = 1_000_000
# A local stand-in for a payment service: never reachable from another machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100
DECLINE_MESSAGE = "Your card was declined. Try again or use a different card."
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
CLOSED_DISPUTE_STATUSES = ("won", "lost")
# A bank transfer's PaymentIntent waits in this status until settle_async is called.
AWAITING_SETTLEMENT_STATUS = "processing"
INJECTED_FAILURE_MESSAGE = "Injected failure from the local Stripe emulator (fail_next_requests); please retry."
# The newest events shown on the dashboard; older ones stay available at /_emulator/events.
DASHBOARD_EVENT_LIMIT = 50
# The newest payments and payouts shown on the dashboard (seeding can create 100,000 payments).
DASHBOARD_ROW_LIMIT = 200
# UK standard pricing for domestic cards: 1.5% + 20p per successful charge, and £20 per dispute.
CARD_FEE_PER_MILLE = 15
CARD_FEE_FIXED = 20
DISPUTE_FEE = 2000
# Funds from a transaction become available (and can be paid out) this long after it is created.
AVAILABILITY_DELAY_SECONDS = 2 * 24 * 60 * 60
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")
ID_ALPHABET = string.ascii_letters + string.digits
