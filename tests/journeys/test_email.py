"""Emails to holders through SES (moto's, which keeps what is sent): one confirmation per order and
one dispatch email with tracking, whatever is redelivered; none without an address; nothing about
the certificate in any of them; a failed send leaves the order as it was and is retried by the
relay's schedule, once, until it goes or is given up."""

from __future__ import annotations

from datetime import timedelta

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.adapters.ses_mailer import SesMailer
from chalicelib.domain.orders import FulfilmentState, OrderState
from tests.builders import NOW
from tests.journeys.test_manufacturer import DISPATCH, call, fid, free_order, relay
from tests.journeys.test_payment_events import deliver, events, paid_order

# Anything that would tell a reader the recipient holds a certificate, or which one.
CERTIFICATE_WORDS = ("certificate", "firearm", "shotgun", "gun", "FA/", "FA2", "SW1A 2AA", "SW1A")


def sent(settings) -> list[dict]:
    messages = ses_backends[DEFAULT_ACCOUNT_ID][settings.region].sent_messages
    return [{"to": m.destinations["ToAddresses"], "subject": m.subject, "body": m.body} for m in messages]


def assert_nothing_about_the_certificate(mail: dict) -> None:
    text = f"{mail['subject']}\n{mail['body']}"
    for word in CERTIFICATE_WORDS:
        assert word.lower() not in text.lower(), word


def test_a_free_order_is_confirmed_by_one_email_with_its_reference_only(holders, settings):
    reference = free_order(holders, email="sam@example.com")
    [mail] = sent(settings)
    assert mail["to"] == ["sam@example.com"] and reference in mail["subject"] and reference in mail["body"]
    assert "Price: free" in mail["body"]
    assert_nothing_about_the_certificate(mail)


def test_a_paid_order_delivered_twice_is_confirmed_once(client, holders, stripe_emulator, settings):
    _, order = paid_order(client, holders, stripe_emulator)
    deliver(client, events(stripe_emulator, "checkout.session.completed")[-1])  # Stripe redelivers
    [mail] = sent(settings)
    assert mail["to"] == [holders.orders.delivery_of(order).email] and "Paid: £8.95" in mail["body"]
    assert_nothing_about_the_certificate(mail)


def test_the_dispatch_email_carries_the_tracking_once_however_often_it_is_reported(client, holders, token, settings):
    reference = free_order(holders, email="sam@example.com")
    for _ in range(2):
        assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    confirmation, dispatch = sent(settings)
    assert "on its way" in dispatch["subject"] and "Tracking reference: RM123456789GB" in dispatch["body"]
    assert "Sent by: Royal Mail" in dispatch["body"] and confirmation["subject"] != dispatch["subject"]
    assert_nothing_about_the_certificate(dispatch)


def test_no_address_no_email(holders, settings):
    free_order(holders, email="")
    assert sent(settings) == []


def test_a_refused_send_is_counted_and_the_order_stands(holders, settings, capsys):
    import boto3

    ses = boto3.client("ses", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    holders.mailer = SesMailer(ses, "nobody@unverified.example")  # moto refuses an unverified sender, as SES does
    reference = free_order(holders, email="sam@example.com")
    order = holders.orders.get(reference)
    assert order.state is OrderState.CONFIRMED and order.fulfilment is FulfilmentState.RELEASED
    assert sent(settings) == []
    assert '"EmailFailures":1' in capsys.readouterr().out


def refusing_mailer(settings) -> SesMailer:
    import boto3

    ses = boto3.client("ses", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    return SesMailer(ses, "nobody@unverified.example")  # moto refuses an unverified sender, as SES does


def test_a_failed_confirmation_is_sent_by_the_relay_once_it_is_due_and_only_once(client, holders, settings):
    working = holders.mailer
    holders.mailer = refusing_mailer(settings)
    reference = free_order(holders, email="sam@example.com")
    assert sent(settings) == []
    holders.mailer = working
    relay(client)
    assert sent(settings) == []  # not due yet: the retry waits 15 minutes
    holders.clock.set(NOW + timedelta(minutes=15))
    relay(client)
    relay(client)  # at-least-once schedules: a second run sends nothing more
    [mail] = sent(settings)
    assert mail["to"] == ["sam@example.com"] and reference in mail["subject"]
    assert holders.orders.notifications_due(NOW + timedelta(days=1)) == []


def test_a_failed_dispatch_email_is_retried_and_a_repeated_report_meanwhile_sends_one(client, holders, token, settings):
    working = holders.mailer
    reference = free_order(holders, email="sam@example.com")
    holders.mailer = refusing_mailer(settings)
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    holders.mailer = working
    assert call(client, token, "POST", f"/fulfilment-orders/{fid(reference)}/dispatch", DISPATCH)[0] == 200
    holders.clock.set(NOW + timedelta(hours=1))
    relay(client)
    confirmation, dispatch = sent(settings)
    assert "Tracking reference: RM123456789GB" in dispatch["body"]
    assert holders.orders.notifications_due(NOW + timedelta(days=1)) == []


def test_an_email_that_keeps_failing_is_given_up_after_six_tries_and_counted(client, holders, settings, capsys):
    holders.mailer = refusing_mailer(settings)
    reference = free_order(holders, email="sam@example.com")
    for hour in range(1, 12):
        holders.clock.set(NOW + timedelta(hours=hour * 2))
        relay(client)
    out = capsys.readouterr().out
    assert out.count('"EmailFailures":1') == 6 and out.count('"EmailsAbandoned":1') == 1
    assert holders.orders.notifications_due(NOW + timedelta(days=30)) == []
    assert sent(settings) == [] and holders.orders.get(reference).state is OrderState.CONFIRMED
