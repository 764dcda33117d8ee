"""One fresh world for one run of a journey: moto reset and its resources re-created, a new Stripe
emulator and a new composition root, all on one ManualClock, and the actors that act in it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.settings import Settings
from devstack.aws import create_resources
from devstack.stripe_emulator import StripeEmulator
from chalicelib.web.journey import JourneyCookies
from tests.builders import ManualClock, load_register, register_row
from tests.conftest import REGION, TEST_SECRETS, app_environment
from tests.crashpoints.faults import Faults
from tests.journeys.browser import Browser, deliver_webhook

PAID_HOLDER, FREE_HOLDER, POSTCODE = "FA/1001", "FA/2000", "SW1A 2AA"
EMAIL = "sam@example.com"
SCHEDULE = {"source": "aws.events", "detail_type": "Scheduled Event", "detail": {}, "resources": []}


class TryAgain(Exception):
    """The actor was told to try again (a 5xx page, a failed webhook, a job that raised)."""


@dataclass
class World:
    moto_url: str
    faults: Faults
    clock: ManualClock = field(default_factory=ManualClock)

    def __post_init__(self):
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10).raise_for_status()
        aws = create_resources("test", self.moto_url, REGION)
        self.emulator = StripeEmulator(
            port=0, webhook_secret=TEST_SECRETS["STRIPE_WEBHOOK_SECRET"], clock=self.clock.timestamp
        )
        self.emulator.start()
        self.settings = Settings.from_environ(app_environment(aws, self.moto_url, self.emulator))
        self.deps = bootstrap.build(self.settings, self.clock)
        bootstrap.use(self.deps)
        from app import app  # after the environment is set, as a Lambda container imports it

        self._client_context = Client(app)
        self.client = self._client_context.__enter__()
        with self.faults.quiet():
            load_register(
                self.deps, register_row(PAID_HOLDER, POSTCODE), register_row(FREE_HOLDER, POSTCODE, free_kit="yes")
            )
        self.browser = Browser(self.client)
        self.delivered: set[str] = set()  # Stripe events that got a 2xx
        self.notes: dict = {}  # what a journey keeps between its steps (a session id, a fulfilment id)

    def order_reference(self) -> str:
        """The holder's order, as their journey cookie names it (the harness reads the cookie)."""
        cookies = JourneyCookies(self.settings.journey_key, 10**9, False, self.clock)
        reference = cookies.read(self.browser.cookie).order_reference
        assert reference, "the holder has no order yet"
        return reference

    def export_body(self, key: str) -> bytes:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION)
        with self.faults.quiet():
            return s3.get_object(Bucket=self.settings.exports_bucket, Key=key)["Body"].read()

    def close(self) -> None:
        self._client_context.__exit__(None, None, None)
        self.emulator.stop()
        bootstrap.reset()

    # -- the holder -----------------------------------------------------------------------------
    def holder_page(self, method: str, path: str, fields: dict | None = None):
        response = self.browser.get(path) if method == "GET" else self.browser.post(path, fields or {})
        if response.status_code >= 500:
            raise TryAgain(f"{path} answered {response.status_code}")
        return response

    def links_to(self, address: str, path: str) -> list[str]:
        """The paths (with their tokens) of the links to `path` emailed to the address, oldest first."""
        pattern = re.compile(rf"https?://[^/\s]+({re.escape(path)}\?token=[A-Za-z0-9_-]+)")
        return [m for to, _, body in _sent() if to == address for m in pattern.findall(body)]

    def subjects_to(self, address: str) -> list[str]:
        return [subject for to, subject, _ in _sent() if to == address]

    # -- Stripe -----------------------------------------------------------------------------------
    def deliver(self, event: dict) -> None:
        response = deliver_webhook(self.client, event, TEST_SECRETS["STRIPE_WEBHOOK_SECRET"])
        if response.status_code != 200:
            raise TryAgain(f"webhook {event['type']} answered {response.status_code}")
        self.delivered.add(event["id"])

    def latest_event(self, kind: str) -> dict:
        return [e for e in self.emulator.events() if e["type"] == kind][-1]

    # -- the kit maker ------------------------------------------------------------------------------
    def manufacturer(self, method: str, path: str, body: dict | None = None):
        from chalicelib.domain.credentials import Scope
        from chalicelib.services.credentials import create_api_key

        if "token" not in self.notes:
            with self.faults.quiet():  # issued by an operator beforehand
                key = create_api_key(Scope.MANUFACTURER, "Kit Maker Ltd", self.deps.api_keys, self.clock())
            self.notes["token"] = key[1]
        headers = {"Authorization": f"Bearer {self.notes['token']}", "Content-Type": "application/json"}
        call = getattr(self.client.http, method.lower())
        try:
            response = call(
                f"/manufacturer{path}", headers=headers, body=json.dumps(body or {}) if method == "POST" else None
            )
        except Exception as exc:  # noqa: BLE001 - the key check (an authorizer) raised: API Gateway answers 500
            raise TryAgain(f"manufacturer {path}: authorizer failed ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise TryAgain(f"manufacturer {path} answered {response.status_code}")
        if response.status_code == 404:  # not given to the kit maker yet: it sees it after the relay's next run
            self.later(minutes=5)
            self.run_job("relay_unsent_fulfilments")
            raise TryAgain(f"manufacturer {path}: not released yet")
        return response

    # -- the schedules --------------------------------------------------------------------------------
    def run_job(self, name: str) -> None:
        """As EventBridge invokes it; a run that raises is retried (Lambda's async retries, then the
        next tick)."""
        try:
            self.client.lambda_.invoke(name, self.client.events.generate_cw_event(**SCHEDULE))
        except Exception as exc:  # noqa: BLE001 - a failed run is what the next run recovers from
            raise TryAgain(f"{name}: {type(exc).__name__}") from None

    def later(self, **delta) -> None:
        self.clock.advance(timedelta(**delta))


def _sent() -> list[tuple[str, str, str]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    messages = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    return [(m.destinations["ToAddresses"][0], m.subject, m.body) for m in messages]
