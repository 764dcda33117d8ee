"""The journey's edges: Stripe down, a webhook not yet arrived, odd input, and what reaches logs."""

from __future__ import annotations

import json
import logging
import re

import boto3
import pytest

from chalicelib.adapters.stripe_payments import StripePayments, stripe_client
from chalicelib.domain.orders import OrderState
from chalicelib.domain.throttle import ADDRESS_LIMITS, REFERENCE_LIMITS
from chalicelib.settings import Settings, SettingsError
from tests.builders import delivery_form, load_register, register_row
from tests.conftest import free_port
from tests.journeys.browser import Browser, location_path


@pytest.fixture
def holder(deps):
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1003", "SW1A 2AA", free_kit="yes"))
    return deps


def up_to_check_answers(client, reference="FA/1001"):
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": reference, "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    return browser


def test_stripe_out_of_reach_shows_try_again_and_frees_the_certificate(client, holder):
    nobody_listening = f"http://127.0.0.1:{free_port()}"
    holder.payments = StripePayments(
        stripe_client(holder.settings.stripe_secret_key, nobody_listening), holder.settings.stripe_webhook_secret
    )
    page = up_to_check_answers(client).post("/order/confirm", {"confirm": "yes"})
    assert page.status_code == 503 and "Try again" in page.body.decode()
    assert "You have not been charged" in page.body.decode()
    assert holder.register.find(holder.keys.reference_key("FA1001")).kits_claimed == 0
    again = Browser(client).post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    assert again.status_code == 303


def test_returning_from_stripe_before_the_webhook_shows_payment_being_confirmed(client, holder):
    browser = up_to_check_answers(client)
    session_id = browser.post("/order/confirm", {"confirm": "yes"}).headers["Location"].rsplit("/", 1)[-1]
    page = browser.get(f"/order/payment-complete?session_id={session_id}").body.decode()
    assert "We are confirming your payment" in page and "Order complete" not in page


def test_an_oversized_form_is_refused_with_413(client, holder):
    response = Browser(client).post("/order/certificate", {"reference": "A" * 20_000, "postcode": "SW1A 2AA"})
    assert response.status_code == 413 and "too large" in response.body.decode()


def test_markup_typed_into_a_form_is_shown_escaped(client, holder):
    response = Browser(client).post("/order/certificate", {"reference": "<script>alert(1)</script>", "postcode": "x"})
    body = response.body.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_an_unexpected_failure_shows_a_plain_page_and_keeps_its_message_out_of_logs(client, holder, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("Ada Example, 1 Test Street")

    holder.orders.create_claiming_certificate = broken
    with caplog.at_level(logging.INFO):
        page = up_to_check_answers(client, "FA/1003").post("/order/confirm", {"confirm": "yes"})
    assert page.status_code == 500 and "Sorry, there is a problem with the service" in page.body.decode()
    assert "Ada" not in page.body.decode() and "Traceback" not in page.body.decode()
    assert "Ada" not in caplog.text and "RuntimeError" in caplog.text


def test_a_whole_journey_logs_no_personal_data(client, holder, caplog, stripe_emulator):
    with caplog.at_level(logging.DEBUG, logger="tracekit"):
        browser = up_to_check_answers(client, "FA/1003")
        assert location_path(browser.post("/order/confirm", {"confirm": "yes"})) == "/order/confirmation"
    logged = caplog.text + repr([r.__dict__ for r in caplog.records if r.name == "tracekit"])
    assert "order placed" in logged
    for personal in ("Ada", "Test Street", "SW1A", "FA1003", "FA/1003", "ada@example.com"):
        assert personal not in logged


def test_a_confirmed_order_in_the_store_matches_what_the_holder_gave(client, holder):
    browser = up_to_check_answers(client, "FA/1003")
    browser.post("/order/confirm", {"confirm": "yes"})
    [reference] = re.findall(r"TK-[0-9A-Z]{5}-[0-9A-Z]{5}", browser.get("/order/confirmation").body.decode())
    order = holder.orders.get(reference)
    assert order.state is OrderState.CONFIRMED and holder.orders.delivery_of(order).full_name == "Ada Example"


def test_missing_configuration_names_the_variable_not_its_value():
    with pytest.raises(SettingsError) as missing:
        Settings.from_environ({"REGISTER_TABLE": "r"})
    assert "ORDERS_TABLE must be set" in str(missing.value)
    with pytest.raises(SettingsError) as short:
        Settings.from_environ({**_complete_env(), "REGISTER_KEY": "too-short-secret"})
    assert "REGISTER_KEY" in str(short.value) and "too-short-secret" not in str(short.value)


def _complete_env():
    return {
        "REGISTER_TABLE": "r",
        "ORDERS_TABLE": "o",
        "CLAIMS_TABLE": "c",
        "API_KEYS_TABLE": "k",
        "ATTEMPTS_TABLE": "a",
        "CONTACTS_TABLE": "ct",
        "EXPORTS_BUCKET": "e",
        "PERSONAL_DATA_KEY_ID": "alias/p",
        "FULFILMENT_QUEUE_URL": "q",
        "REGISTER_KEY": "k" * 32,
        "JOURNEY_KEY": "j" * 32,
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "APP_BASE_URL": "http://x",
    }


def test_free_kit_areas_must_be_districts_or_sectors():
    with pytest.raises(SettingsError) as wrong:
        Settings.from_environ({**_complete_env(), "FREE_KIT_AREAS": "E1, N17 6, E1 6A, nowhere"})
    assert "E1 6A, NOWHERE" in str(wrong.value)
    areas = Settings.from_environ({**_complete_env(), "FREE_KIT_AREAS": " e1 , n17  6 "}).campaign.free_kit_areas
    assert areas == {"E1", "N17 6"}


def test_forms_may_lead_to_stripes_checkout_or_the_emulators():
    assert Settings.from_environ(_complete_env()).checkout_origin == "https://checkout.stripe.com"
    local = Settings.from_environ({**_complete_env(), "STRIPE_API_BASE": "http://127.0.0.1:12111/"})
    assert local.checkout_origin == "http://127.0.0.1:12111"


def test_the_journey_outlives_the_checkout_hold():
    with pytest.raises(SettingsError):
        Settings.from_environ({**_complete_env(), "CHECKOUT_HOLD_MINUTES": "120", "JOURNEY_TTL_SECONDS": "7200"})


def test_a_form_with_absurdly_many_fields_is_refused_cleanly(client, holder):
    body = "&".join(f"f{i}=x" for i in range(200))
    response = client.http.post(
        "/order/certificate", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


def test_the_attempt_past_the_limit_is_locked_and_indistinguishable_from_any_refusal(client, holder, capsys):
    visitor, limit = Browser(client), REFERENCE_LIMITS.per_window
    wrong = [visitor.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 1AA"}) for _ in range(limit)]
    locked = visitor.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    assert locked.status_code == wrong[0].status_code == 400
    normalise = lambda r: r.body.decode().replace("SW1A 2AA", "PC").replace("SW1A 1AA", "PC")  # noqa: E731
    assert normalise(locked) == normalise(wrong[0])
    assert sorted(locked.headers.items()) == sorted(wrong[0].headers.items())
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["CertificateCheckLockouts"] for m in metrics] == [0] * limit + [1]
    assert all(m["CertificateCheckRefusals"] == 1 for m in metrics)


def test_a_forged_x_forwarded_for_changes_nothing_the_address_is_the_gateways(client, deps):
    """The address counted is API Gateway's requestContext.identity.sourceIp (the test client's is
    127.0.0.1): a new X-Forwarded-For on every attempt neither escapes the address's lock nor
    charges the address it names."""
    limit = ADDRESS_LIMITS.per_window
    load_register(deps, *[register_row(f"FA/4{i:03d}", "SW1A 2AA") for i in range(limit + 1)])
    visitor = Browser(client)
    for i in range(limit):
        forged = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-Ip": f"198.51.100.{i}"}
        visitor.post("/order/certificate", {"reference": f"FA/4{i:03d}", "postcode": "SW1A 1AA"}, forged)
    right = {"reference": f"FA/4{limit:03d}", "postcode": "SW1A 2AA"}
    assert visitor.post("/order/certificate", right, {"X-Forwarded-For": "192.0.2.200"}).status_code == 400
    charged = {key.split(":")[1] for key in attempt_counters(deps.settings) if key.startswith("ip:")}
    assert charged == {deps.keys.reference_key("ip:127.0.0.1")}


def attempt_counters(settings) -> dict[str, int]:
    """The attempts table as stored: counter key -> attempts reserved."""
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    items = dynamodb.scan(TableName=settings.attempts_table, ConsistentRead=True)["Items"]
    return {item["attempt_key"]["S"]: int(item["reserved"]["N"]) for item in items}
