"""Shared fixtures. Every test starts from fresh state: moto is reset and the resources are
re-created from infra/resources.json; the app gets a fresh composition root."""

from __future__ import annotations

import contextlib
import functools

import logging
import os
import socket
from collections import Counter

import botocore.loaders
import botocore.session
import pytest
import requests

REGION = "eu-west-2"
# Each fresh composition root (every test's, every crash point's world) makes new botocore
# sessions, and each session's own loader parses the service models' JSON again: about a third of
# a crash point's time. One loader per data path, shared, parses each model once per process; the
# models are read-only. Production makes its clients once per container, so nothing it does changes.
botocore.session.create_loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)
os.environ["TRACEKIT_LOG_PROPAGATE"] = "1"  # before app.py is imported: let pytest capture tracekit's log
# The operator CLI fills unset variables from an env file; a running `make run`'s must not leak in.
os.environ["TRACEKIT_ENV_FILE"] = os.path.join(os.path.dirname(__file__), "no-local-settings.env")
TEST_SECRETS = {
    "REGISTER_KEY": "test-register-key-0123456789abcdef0123456789",
    "JOURNEY_KEY": "test-journey-key-0123456789abcdef0123456789ab",
    "STRIPE_SECRET_KEY": "sk_test_tracekit_tests",
    "STRIPE_WEBHOOK_SECRET": "whsec_tracekit_tests",
}
# Fictitious: the campaign's free-kit areas in tests are one district and one sector.
FREE_KIT_AREAS = "E1,N17 6"


def pytest_addoption(parser):
    parser.addoption(
        "--clock-shift-days",
        type=int,
        default=0,
        help="run the suite with the machine's clock moved this many days (negative: back), through "
        "time-machine, so that a test tied to a date fails on the day it is written",
    )

    parser.addoption(
        "--clock-time",
        default=None,
        metavar="HH:MM",
        help="run the suite with the machine's clock at this UTC time of day (after any day shift), so "
        "that a test mixing the machine's clock with the test clock (noon) fails at any hour, not just some",
    )

    parser.addoption(
        "--crash-sweep",
        choices=("sample", "full"),
        default="sample",
        help="the crash-point sweep: a sample reaching every call site once (default), or every point",
    )


def pytest_configure(config):
    days, at = config.getoption("--clock-shift-days"), config.getoption("--clock-time")
    if days or at:
        import time_machine
        from datetime import datetime, time, timedelta, timezone

        moment = datetime.now(timezone.utc) + timedelta(days=days)
        if at:
            hours, minutes = (int(part) for part in at.split(":"))
            moment = datetime.combine(moment.date(), time(hours, minutes), tzinfo=timezone.utc)
        # tick=True: time goes on from the shifted start, so waits and timeouts behave as usual.
        traveller = time_machine.travel(moment, tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_report_header(config):
    days, at = config.getoption("--clock-shift-days"), config.getoption("--clock-time")
    if not (days or at):
        return None
    return f"clock shifted by {days:+d} days" + (f", at {at} UTC" if at else "") + " (time-machine)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """moto's real HTTP server, bound to loopback, for the whole session, serving one request at a
    time (devstack.moto_server says why: a race test must be decided by tracekit's conditions)."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    from devstack.moto_server import start_moto_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request

    server, _url = start_moto_server()  # port 0: the system picks a free one, with no race for it
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_url(moto_server):
    return moto_server.url


@pytest.fixture
def aws(moto_url):
    """Fresh AWS resources for this test; returns the environment naming them."""
    from devstack.aws import create_resources

    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    return create_resources("test", moto_url, REGION)


@pytest.fixture
def clock():
    """The test's one clock: the app and the Stripe emulator both read it."""
    from tests.builders import ManualClock

    return ManualClock()


@pytest.fixture
def stripe_emulator(clock):
    from devstack.stripe_emulator import StripeEmulator

    emulator = StripeEmulator(port=0, webhook_secret=TEST_SECRETS["STRIPE_WEBHOOK_SECRET"], clock=clock.timestamp)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def environment(aws, moto_url, stripe_emulator):
    return app_environment(aws, moto_url, stripe_emulator)


def app_environment(aws: dict, moto_url: str, stripe_emulator) -> dict:
    """The app's configuration for a test: moto's resources, test secrets, the emulator."""
    return {
        **aws,
        **TEST_SECRETS,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "STRIPE_API_BASE": stripe_emulator.base_url,
        "APP_BASE_URL": "http://testserver",
        "CONSOLE_BASE_URL": "http://console.testserver",
        "FREE_KIT_AREAS": FREE_KIT_AREAS,
        "STAGE": "test",
        "COOKIE_SECURE": "false",
    }


@pytest.fixture
def settings(environment):
    from chalicelib.settings import Settings

    return Settings.from_environ(environment)


class AwsRequests:
    """Counts AWS requests as botocore sends them (its before-send event), by service and operation."""

    def __init__(self):
        self.calls: Counter = Counter()
        self.function = "-"  # which Lambda function the test is playing (see tests/integration/test_iam_policy.py)
        self.made: list[tuple[str, str, str, dict]] = []  # (function, service, operation, parameters)

    def reset(self):
        self.calls.clear()
        self.made.clear()

    @contextlib.contextmanager
    def as_function(self, name: str):
        previous, self.function = self.function, name
        try:
            yield
        finally:
            self.function = previous

    def total(self, service: str | None = None) -> int:
        return sum(n for (svc, _op), n in self.calls.items() if service in (None, svc))


@pytest.fixture
def aws_requests(monkeypatch):
    """Every botocore client made during the test reports each request it sends."""
    counter = AwsRequests()
    original = botocore.session.Session.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = original(self, service_name, *args, **kwargs)

        def before_send(request, **_):
            operation = request.headers.get("X-Amz-Target", b"")
            operation = operation.decode() if isinstance(operation, bytes) else operation
            counter.calls[(service_name, operation.rsplit(".", 1)[-1] or request.method)] += 1

        def provide_params(params, model, **_):
            counter.made.append((counter.function, service_name, model.name, dict(params)))

        client.meta.events.register("before-send", before_send)
        client.meta.events.register("provide-client-params", provide_params)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return counter


@pytest.fixture
def deps(settings, aws_requests, clock):
    """Real adapters (PynamoDB and boto3 on moto, Stripe SDK on the emulator), built by bootstrap
    on the test's clock."""
    from chalicelib import bootstrap

    return bootstrap.build(settings, clock)


@pytest.fixture
def client(deps):
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap

    bootstrap.use(deps)
    bootstrap.configure_logging()  # what the first request of a container does
    with Client(app) as test_client:
        yield test_client
    bootstrap.reset()
