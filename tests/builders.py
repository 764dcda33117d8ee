"""Test data: register rows for fictitious holders, and ways to load them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from chalicelib.domain.register import parse_register_row
from chalicelib.services import Dependencies
from chalicelib.services.register import delete_stale
from chalicelib.settings import Settings


def noon_today() -> datetime:
    """Noon UTC on the machine's own date. Tests move with the calendar, so none is tied to a day
    (the suite runs under a clock shifted a year either way), yet keep a known time of day."""
    return datetime.combine(datetime.now(timezone.utc).date(), time(12), tzinfo=timezone.utc)


NOW = noon_today()


def days_from_now(days: int) -> date:
    return (NOW + timedelta(days=days)).date()


class ManualClock:
    """The one clock every component of a test reads: tracekit's services, its cookies and webhook
    check, and the Stripe emulator. It stands still until a test moves it."""

    def __init__(self, start: datetime = NOW):
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()


def register_row(
    reference: str = "FA/12345",
    postcode: str = "SW1A 2AA",
    status: str = "in force",
    expiry_date: str | None = None,  # in force for about another year
    free_kit: str = "",
    certificate_type: str = "firearm",
) -> dict[str, str]:
    return {
        "certificate_reference": reference,
        "certificate_type": certificate_type,
        "status": status,
        "expiry_date": expiry_date or days_from_now(400).isoformat(),
        "postcode": postcode,
        "free_kit": free_kit,
    }


def load_register(deps: Dependencies, *rows: dict[str, str]) -> None:
    """Tests add holders as they go: the live register and these rows become a new generation,
    switched to as an import switches, so a check reads them as it reads an imported register."""
    register, rules = deps.register, deps.settings.reference_rules
    added = {
        entry.reference_key: entry for entry in (parse_register_row(row, rules).to_entry(deps.keys) for row in rows)
    }
    state = register.state()
    kept = [e for e in register.entries(state.live) if e.reference_key not in added] if state.live is not None else []
    generation = register.start_generation()
    written = register.save_all(generation, [*kept, *added.values()])
    register.switch(generation, state, written, deps.clock())
    delete_stale(register, through=generation)


def delivery_form(**overrides) -> dict[str, str]:
    form = {
        "full_name": "Ada Example",
        "address_line_1": "1 Test Street",
        "address_line_2": "",
        "town": "London",
        "postcode": "sw1a 2aa",
        "email": "ada@example.com",
    }
    form.update(overrides)
    return form


def fake_settings(**overrides) -> Settings:
    env = {
        "REGISTER_TABLE": "register",
        "ORDERS_TABLE": "orders",
        "CLAIMS_TABLE": "claims",
        "API_KEYS_TABLE": "keys",
        "ATTEMPTS_TABLE": "attempts",
        "CONTACTS_TABLE": "contacts",
        "EXPORTS_BUCKET": "exports",
        "PERSONAL_DATA_KEY_ID": "unit-personal-data-key",
        "FULFILMENT_QUEUE_URL": "https://sqs.example/q.fifo",
        "REGISTER_KEY": "unit-register-key-0123456789abcdef0123456789",
        "JOURNEY_KEY": "unit-journey-key-0123456789abcdef0123456789ab",
        "STRIPE_SECRET_KEY": "sk_test_unit",
        "STRIPE_WEBHOOK_SECRET": "whsec_fake",
        "APP_BASE_URL": "http://testserver",
        "FREE_KIT_AREAS": "E1,N17 6",
    }
    env.update(overrides)
    return Settings.from_environ(env)


def fake_dependencies(**setting_overrides) -> Dependencies:
    from chalicelib.adapters.jinja_emails import JinjaEmails
    from chalicelib.reports import report_for, write_statement
    from tests.fakes import (
        FakeLedger,
        InMemoryExports,
        InMemoryFinanceOrders,
        FakePayments,
        InMemoryApiKeys,
        InMemoryAttempts,
        InMemoryContacts,
        InMemoryFulfilmentQueue,
        InMemoryFulfilments,
        InMemoryOrders,
        InMemoryRegister,
        RecordedMetrics,
        SentMail,
    )

    claims: dict[str, int] = {}
    orders = InMemoryOrders(claims)
    settings = fake_settings(**setting_overrides)
    return Dependencies(
        settings=settings,
        register=InMemoryRegister(claims),
        attempts=InMemoryAttempts(),
        orders=orders,
        payments=FakePayments(),
        fulfilment_queue=InMemoryFulfilmentQueue(),
        fulfilments=InMemoryFulfilments(orders),
        api_keys=InMemoryApiKeys(),
        metrics=RecordedMetrics(),
        ledger=FakeLedger(),
        finance_orders=InMemoryFinanceOrders(orders),
        exports=InMemoryExports(),
        clock=ManualClock(),
        reports=report_for,
        statement_files=write_statement,
        emails=JinjaEmails(settings.app_base_url, contact_email=settings.campaign_contact_email),
        contacts=InMemoryContacts(),
        mailer=SentMail(),
    )


def sent_mail(deps: Dependencies) -> list[tuple[str, str, str]]:
    """(to, subject, body) of every email sent: the fake's, or what moto's SES kept."""
    if hasattr(deps.mailer, "sent"):
        return list(deps.mailer.sent)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    messages = ses_backends[DEFAULT_ACCOUNT_ID][deps.settings.region].sent_messages
    return [(m.destinations["ToAddresses"][0], m.subject, m.body) for m in messages]
