"""Test data: register rows for fictitious holders, and ways to load them."""

from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.services import Dependencies, import_register
from chalicelib.settings import Settings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def register_row(
    reference: str = "FA/12345",
    postcode: str = "SW1A 2AA",
    status: str = "in force",
    expiry_date: str = "2028-01-31",
    free_kit: str = "",
    certificate_type: str = "firearm",
) -> dict[str, str]:
    return {
        "certificate_reference": reference,
        "certificate_type": certificate_type,
        "status": status,
        "expiry_date": expiry_date,
        "postcode": postcode,
        "free_kit": free_kit,
    }


def load_register(deps: Dependencies, *rows: dict[str, str]) -> None:
    report = import_register(
        enumerate(rows, start=2), deps.register, deps.keys, deps.settings.reference_rules, replace=False
    )  # tests add holders as they go
    assert not report.rejected, report.rejected


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
        "EXPORTS_BUCKET": "exports",
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
    from tests.fakes import (
        FakeLedger,
        InMemoryExports,
        InMemoryFinanceOrders,
        FakePayments,
        InMemoryApiKeys,
        InMemoryFulfilmentQueue,
        InMemoryFulfilments,
        InMemoryOrders,
        InMemoryRegister,
        RecordedMetrics,
        SentMail,
    )

    claims: dict[str, int] = {}
    orders = InMemoryOrders(claims)
    return Dependencies(
        settings=fake_settings(**setting_overrides),
        register=InMemoryRegister(claims),
        orders=orders,
        payments=FakePayments(),
        fulfilment_queue=InMemoryFulfilmentQueue(),
        fulfilments=InMemoryFulfilments(orders),
        api_keys=InMemoryApiKeys(),
        metrics=RecordedMetrics(),
        ledger=FakeLedger(),
        finance_orders=InMemoryFinanceOrders(orders),
        exports=InMemoryExports(),
        clock=lambda: NOW,
        mailer=SentMail(),
    )
