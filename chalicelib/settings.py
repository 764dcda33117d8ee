"""Configuration, read once from the environment into a typed object.

Nothing reads os.environ at import time: the composition root calls Settings.from_environ()
on the first request a Lambda container serves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, TypeVar
from urllib.parse import urlsplit

from .domain.eligibility import CampaignRules
from .domain.lifecycle import HOLD_GRACE
from .domain.money import Money
from .domain.references import ReferenceRules


_Secret = TypeVar("_Secret", str, bytes)


class SettingsError(RuntimeError):
    """Configuration is missing or malformed; the message names the variable, never its value."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint_url: str | None
    register_table: str
    orders_table: str
    claims_table: str
    attempts_table: str
    api_keys_table: str
    contacts_table: str
    fulfilment_queue_url: str
    dead_letter_queue_url: str | None
    exports_bucket: str
    personal_data_key_id: str  # the customer-managed KMS key that seals the orders' personal fields
    register_key: bytes
    journey_key: bytes
    stripe_secret_key: str
    stripe_webhook_secret: str
    stripe_api_base: str | None
    app_base_url: str
    campaign: CampaignRules
    reference_rules: ReferenceRules
    product_code: str
    checkout_hold_minutes: int
    journey_ttl_seconds: int
    cookie_secure: bool
    stuck_after_days: int
    kit_maker_unit_price_pence: int
    retention_days: int
    register_max_removal_percent: int
    letters_sent: int = 30_000  # the campaign's letters to holders: the dashboard's uptake is against it
    replacement_after_days: int = 10  # days after dispatch before a holder may report a kit missing
    contact_link_hours: int = 24  # a contact register confirmation (or withdrawal) link's life
    contact_withdraw_link_days: int = 365  # the life of the withdrawal link in a contact email
    email_from: str | None = None  # the verified SES sender; unset, no email is sent
    campaign_contact_email: str | None = None  # where a holder's pages send them with a question
    staff: StaffConsole | None = None  # the staff console's resources; None in the holder's functions

    def __post_init__(self) -> None:
        # A holder back from Stripe at the last minute of the checkout hold still has their journey.
        if self.journey_ttl_seconds < self.checkout_hold_minutes * 60 + HOLD_GRACE.total_seconds():
            # the journey (and its cookie) must outlive the checkout's hold and its grace
            minutes = int(HOLD_GRACE.total_seconds()) // 60
            raise SettingsError(f"JOURNEY_TTL_SECONDS must exceed CHECKOUT_HOLD_MINUTES by at least {minutes} minutes")

    @property
    def checkout_origin(self) -> str:
        return checkout_origin(self.stripe_api_base)

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None, secrets_when_used: bool = False) -> "Settings":
        """`secrets_when_used` (the operator's commands): a secret left unset is read as empty and
        refused only where it is used (`required_secret`), so a command that uses none needs none."""
        env = os.environ if env is None else env
        read = _Reader(env)
        return cls(
            **_resources(read, env),
            **_secrets(read, secrets_when_used),
            **_behaviour(read),
            staff=StaffConsole.read(read),
        )


def _resources(read: "_Reader", env: Mapping[str, str]) -> dict:
    """Where things are: the region, the tables, the queues and the bucket."""
    return {
        "stage": read.text("STAGE", "dev"),
        "region": read.text("AWS_REGION", env.get("AWS_DEFAULT_REGION", "eu-west-2")),
        "aws_endpoint_url": read.optional("AWS_ENDPOINT_URL"),
        "register_table": read.required("REGISTER_TABLE"),
        "orders_table": read.required("ORDERS_TABLE"),
        "claims_table": read.required("CLAIMS_TABLE"),
        "attempts_table": read.required("ATTEMPTS_TABLE"),
        "api_keys_table": read.required("API_KEYS_TABLE"),
        "contacts_table": read.required("CONTACTS_TABLE"),
        "fulfilment_queue_url": read.required("FULFILMENT_QUEUE_URL"),
        "dead_letter_queue_url": read.optional("FULFILMENT_DEAD_LETTER_QUEUE_URL"),
        "exports_bucket": read.required("EXPORTS_BUCKET"),
        "personal_data_key_id": read.required("PERSONAL_DATA_KEY_ID"),
    }


def _secrets(read: "_Reader", when_used: bool) -> dict:
    def secret(name: str) -> bytes:
        return b"" if when_used and read.optional(name) is None else read.secret(name)

    def text(name: str) -> str:
        return (read.optional(name) or "") if when_used else read.required(name)

    return {
        "register_key": secret("REGISTER_KEY"),
        "journey_key": secret("JOURNEY_KEY"),
        "stripe_secret_key": text("STRIPE_SECRET_KEY"),
        "stripe_webhook_secret": text("STRIPE_WEBHOOK_SECRET"),
    }


def required_secret(value: _Secret, name: str) -> _Secret:
    """A secret at its point of use: one an operator's command left unset (read as empty, see
    `Settings.from_environ`) is refused here, naming the variable."""
    if not value:
        raise SettingsError(f"{name} must be set (this command uses it)")
    return value


def _behaviour(read: "_Reader") -> dict:
    """The campaign's rules, the service's addresses and its time limits."""
    return {
        "stripe_api_base": read.optional("STRIPE_API_BASE"),
        "app_base_url": read.required("APP_BASE_URL").rstrip("/"),
        "campaign": _campaign(read),
        "reference_rules": ReferenceRules(read.text("CERTIFICATE_REFERENCE_PATTERN", ReferenceRules.pattern)),
        "product_code": read.text("PRODUCT_CODE", "PMK-1"),
        "checkout_hold_minutes": read.integer("CHECKOUT_HOLD_MINUTES", 60, minimum=30, maximum=24 * 60),
        "journey_ttl_seconds": read.integer("JOURNEY_TTL_SECONDS", 7200, minimum=60, maximum=48 * 3600),
        "cookie_secure": read.flag("COOKIE_SECURE", True),
        "stuck_after_days": read.integer("STUCK_AFTER_DAYS", 5, minimum=1, maximum=60),
        "replacement_after_days": read.integer("REPLACEMENT_AFTER_DAYS", 10, minimum=1, maximum=90),
        "letters_sent": read.integer("LETTERS_SENT", 30_000, minimum=1, maximum=10_000_000),
        "contact_link_hours": read.integer("CONTACT_LINK_HOURS", 24, minimum=1, maximum=168),
        "contact_withdraw_link_days": read.integer("CONTACT_WITHDRAW_LINK_DAYS", 365, minimum=30, maximum=3650),
        "kit_maker_unit_price_pence": read.integer("KIT_MAKER_UNIT_PRICE_PENCE", 895, minimum=0, maximum=100_000),
        "retention_days": read.integer("RETENTION_DAYS", 30, minimum=1, maximum=365),
        "register_max_removal_percent": register_max_removal_percent(read),
        "email_from": read.optional("EMAIL_FROM"),
        "campaign_contact_email": read.optional("CAMPAIGN_CONTACT_EMAIL"),
    }


@dataclass(frozen=True)
class StaffConsole:
    """Where the console's sign-in and sessions are, and its own address (its forms' origin)."""

    user_pool_id: str
    user_pool_client_id: str
    sessions_table: str
    audit_table: str
    base_url: str

    @classmethod
    def read(cls, read: "_Reader") -> "StaffConsole | None":
        """Set only where the console runs (all five, or none: half a console is a mistake)."""
        names = (
            "STAFF_USER_POOL_ID",
            "STAFF_USER_POOL_CLIENT_ID",
            "STAFF_SESSIONS_TABLE",
            "AUDIT_TABLE",
            "CONSOLE_BASE_URL",
        )
        values = [read.optional(name) for name in names]
        if not any(values):
            return None
        for name, value in zip(names, values, strict=True):
            if value is None:
                raise SettingsError(f"{name} must be set with the other STAFF_* variables")
        pool, client, sessions, audit, url = (str(v) for v in values)
        return cls(pool, client, sessions, audit, url.rstrip("/"))


@dataclass(frozen=True)
class OperatorSettings:
    """The subset the register's commands need: no Stripe keys. REGISTER_KEY is read only if set
    and refused where used (`required_secret`): an import needs it, status and rollback do not."""

    region: str
    aws_endpoint_url: str | None
    register_table: str
    claims_table: str
    contacts_table: str  # an import removes the contacts of certificates that left the register
    register_key: bytes
    reference_rules: ReferenceRules
    register_max_removal_percent: int = 5

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> "OperatorSettings":
        env = os.environ if env is None else env
        read = _Reader(env)
        return cls(
            region=read.text("AWS_REGION", env.get("AWS_DEFAULT_REGION", "eu-west-2")),
            aws_endpoint_url=read.optional("AWS_ENDPOINT_URL"),
            register_table=read.required("REGISTER_TABLE"),
            claims_table=read.required("CLAIMS_TABLE"),
            contacts_table=read.required("CONTACTS_TABLE"),
            register_key=read.secret("REGISTER_KEY") if read.optional("REGISTER_KEY") else b"",
            reference_rules=ReferenceRules(read.text("CERTIFICATE_REFERENCE_PATTERN", ReferenceRules.pattern)),
            register_max_removal_percent=register_max_removal_percent(read),
        )


def register_max_removal_percent(read: "_Reader") -> int:
    """The most of the live register one import may remove without --allow-shrink, in percent."""
    return read.integer("REGISTER_MAX_REMOVAL_PERCENT", 5, minimum=0, maximum=100)


_AREA = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?( [0-9])?")


@dataclass(frozen=True)
class KeyStoreSettings:
    """What the credential commands need: the key table, and nothing secret."""

    region: str
    aws_endpoint_url: str | None
    api_keys_table: str

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> "KeyStoreSettings":
        env = os.environ if env is None else env
        read = _Reader(env)
        return cls(
            read.text("AWS_REGION", env.get("AWS_DEFAULT_REGION", "eu-west-2")),
            read.optional("AWS_ENDPOINT_URL"),
            read.required("API_KEYS_TABLE"),
        )


def checkout_origin(stripe_api_base: str | None) -> str:
    """Where the hosted checkout page is: Stripe's, or the local emulator's (the API's origin)."""
    if not stripe_api_base:
        return "https://checkout.stripe.com"
    parts = urlsplit(stripe_api_base)
    return f"{parts.scheme}://{parts.netloc}"


def _free_kit_areas(read: "_Reader") -> frozenset[str]:
    """Postcode districts ('E1') or sectors ('N17 6'); a typo would silently match nobody, so refuse it."""
    areas = frozenset(" ".join(a.split()).upper() for a in read.text("FREE_KIT_AREAS", "").split(",") if a.strip())
    wrong = sorted(a for a in areas if not _AREA.fullmatch(a))
    if wrong:
        raise SettingsError(
            "FREE_KIT_AREAS has entries that are not postcode districts or sectors: " + ", ".join(wrong)
        )
    return areas


def _campaign(read: "_Reader") -> CampaignRules:
    areas = _free_kit_areas(read)
    return CampaignRules(
        kit_price=Money(read.integer("KIT_PRICE_PENCE", 895, minimum=1), read.text("CURRENCY", "gbp").lower()),
        free_kit_areas=areas,
        kits_per_certificate=read.integer("KITS_PER_CERTIFICATE", 1, minimum=1),
    )


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise SettingsError(f"{name} must be set")
        return value

    def secret(self, name: str) -> bytes:
        value = self.required(name).encode()
        if len(value) < 32:
            raise SettingsError(f"{name} must be at least 32 characters of random data")
        return value

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.optional(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise SettingsError(f"{name} must be between {minimum} and {maximum}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        return raw.lower() in {"1", "true", "yes", "on"}
