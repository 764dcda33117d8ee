"""tracekit's parts that judge time read the app's clock, not the machine's: the journey cookie's
age, a webhook's signed time, metrics. A clock a year away from the machine's proves it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from chalicelib.adapters.metrics import EmfMetrics
from chalicelib.adapters.stripe_payments import StripePayments, stripe_client
from chalicelib.domain.errors import InvalidWebhook
from chalicelib.web.journey import Journey, JourneyCookies
from devstack.stripe_emulator import sign_webhook_payload
from tests.builders import NOW, ManualClock

A_YEAR_ON = NOW + timedelta(days=400)
SECRET = "whsec_one_clock"


def test_the_journey_cookie_ages_on_the_apps_clock():
    clock = ManualClock(A_YEAR_ON)
    cookies = JourneyCookies(b"k" * 32, 3600, False, clock)
    cookie = cookies.set_cookie(Journey(order_reference="TK-AAAAA-BBBBB")).split(";", 1)[0]
    clock.advance(timedelta(seconds=3599))
    assert cookies.read(cookie).order_reference == "TK-AAAAA-BBBBB"
    clock.advance(timedelta(seconds=2))
    assert cookies.read(cookie).order_reference is None


def completed_event() -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_1", "client_reference_id": "TK-AAAAA-BBBBB", "payment_status": "paid"}},
        }
    ).encode()


def test_a_webhook_is_judged_recent_against_the_apps_clock():
    payments = StripePayments(stripe_client("sk_test_x", "http://127.0.0.1:9"), SECRET, ManualClock(A_YEAR_ON))
    body = completed_event()
    signed_now = int(A_YEAR_ON.timestamp())
    assert payments.parse_webhook(body, sign_webhook_payload(body, SECRET, signed_now)).id == "evt_1"
    for too_old in (signed_now - 301, int(NOW.timestamp())):  # the second: the machine's today
        with pytest.raises(InvalidWebhook):
            payments.parse_webhook(body, sign_webhook_payload(body, SECRET, too_old))


def test_metrics_are_stamped_with_the_apps_clock():
    out = io.StringIO()
    EmfMetrics("test", lambda: out, ManualClock(A_YEAR_ON)).report({"Things": 1})
    assert json.loads(out.getvalue())["_aws"]["Timestamp"] == int(A_YEAR_ON.timestamp() * 1000)
