"""The composition root: the one place real adapters are built, lazily, once per Lambda container.

Nothing here runs at import time; the first request calls dependencies(). Tests install their own
Dependencies with use() and drop them with reset().
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from .services import Dependencies
from .settings import OperatorSettings, Settings, required_secret
from .timeutil import utc_now

_lock = threading.Lock()
_dependencies: Dependencies | None = None


def dependencies() -> Dependencies:
    global _dependencies
    if _dependencies is None:
        with _lock:
            if _dependencies is None:
                configure_logging()
                _dependencies = build(settings_from_environment())
    return _dependencies


def checkout_origin() -> str:
    """For every page's CSP. From the built dependencies when there are any; otherwise from the
    environment alone, so a page that needs nothing else (the start page) builds no adapter."""
    if _dependencies is not None:
        return _dependencies.settings.checkout_origin
    import os

    from .settings import checkout_origin as origin_of

    return origin_of(os.environ.get("STRIPE_API_BASE"))


def configure_logging() -> None:
    """JSON lines for tracekit's logger (app.log is the logger named after the app), once per
    container; TRACEKIT_LOG_PROPAGATE=1 (tests) also hands records to the root logger."""
    import os

    from .web import logs

    logs.configure(("tracekit",), propagate=os.environ.get("TRACEKIT_LOG_PROPAGATE") == "1")


def settings_from_environment(env=None) -> Settings:
    """Settings from the environment, with `ssm:` secret references read from Parameter Store."""
    return Settings.from_environ(_resolved(env))


def operator_command_settings(env=None) -> Settings:
    """The app's settings for an operator's command: its secrets are refused only where used, so
    `order show` needs no Stripe key and `finance export` no REGISTER_KEY (settings.required_secret)."""
    return Settings.from_environ(_resolved(env), secrets_when_used=True)


def operator_settings_from_environment(env=None) -> OperatorSettings:
    return OperatorSettings.from_environ(_resolved(env))


def _resolved(env):
    import os

    from . import secrets

    env = os.environ if env is None else env

    def ssm():
        import boto3

        region = env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION"))
        return boto3.session.Session().client(
            "ssm", region_name=region, endpoint_url=env.get("AWS_ENDPOINT_URL") or None
        )

    return secrets.resolve(env, ssm)


def build(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Dependencies:
    """Real adapters for the given settings. Heavy SDKs are imported here, not at module import.
    `clock` is the one clock everything built here reads (tests pass their own)."""
    import boto3

    from .adapters.jinja_emails import JinjaEmails
    from .adapters.metrics import EmfMetrics
    from .reports import report_for, write_statement  # openpyxl only when a workbook is written

    stripe = functools.cache(lambda: _stripe_adapters(settings, clock))  # one SDK client for both, on first use
    aws = boto3.session.Session(region_name=settings.region)  # one session for this container's clients
    fields = personal_fields(settings, aws)
    return Dependencies(
        settings=settings,
        payments=_BuiltOnFirstUse(lambda: stripe()[0]),
        api_keys=key_store(settings.api_keys_table, settings.region, settings.aws_endpoint_url),
        metrics=EmfMetrics(settings.stage, clock=clock),
        ledger=_BuiltOnFirstUse(lambda: stripe()[1]),
        clock=clock,
        reports=report_for,
        statement_files=write_statement,
        emails=JinjaEmails(settings.app_base_url, contact_email=settings.campaign_contact_email),
        **_aws_adapters(settings, aws),
        **_dynamodb_adapters(settings, fields),
        contacts=contact_register(settings, fields),
        **_staff_adapters(settings, aws),
    )


def _staff_adapters(settings: Settings, aws) -> dict:
    """The console's user pool and sessions, where the console runs (settings.staff set)."""
    if settings.staff is None:
        return {}
    from .adapters.cognito_staff import CognitoStaff
    from .adapters.dynamodb_audit import DynamoAuditLog, build_audit_model
    from .adapters.dynamodb_staff_sessions import DynamoStaffSessions, build_session_model

    staff, region, endpoint = settings.staff, settings.region, settings.aws_endpoint_url

    def directory():
        return CognitoStaff(
            aws.client("cognito-idp", endpoint_url=endpoint), staff.user_pool_id, staff.user_pool_client_id
        )

    return {
        "staff_directory": _BuiltOnFirstUse(functools.cache(directory)),
        "staff_sessions": DynamoStaffSessions(build_session_model(staff.sessions_table, region, endpoint)),
        "audit": DynamoAuditLog(build_audit_model(staff.audit_table, region, endpoint)),
    }


def personal_fields(settings: Settings, aws):
    """The container's sealer of personal fields: its KMS client, data key and unwrapped keys."""
    from .adapters.kms_fields import PersonalFields

    return PersonalFields(aws.client("kms", endpoint_url=settings.aws_endpoint_url), settings.personal_data_key_id)


def _dynamodb_adapters(settings: Settings, fields) -> dict:
    from .adapters.dynamodb import build_models
    from .adapters.dynamodb_attempts import DynamoAttempts
    from .adapters.dynamodb_finance import FinanceOrders
    from .adapters.dynamodb_fulfilments import FulfilmentQueries
    from .adapters.dynamodb_orders import DynamoOrders
    from .adapters.dynamodb_register import DynamoRegister

    models = build_models(tables_for(settings))
    return {
        "register": DynamoRegister(models),
        "attempts": DynamoAttempts(models.attempts, models.connection),
        "orders": DynamoOrders(models, fields, timedelta(days=settings.retention_days), recipient_key(settings)),
        "fulfilments": FulfilmentQueries(models, settings.product_code, fields),
        "finance_orders": FinanceOrders(models),
    }


def contact_register(settings: Settings, fields):
    from .adapters.dynamodb_contacts import DynamoContacts, build_contact_model

    model = build_contact_model(settings.contacts_table, settings.region, settings.aws_endpoint_url)
    return DynamoContacts(model, fields)


def recipient_key(settings: Settings) -> Callable[[str], str]:
    """Keys a recipient's lookup text with the register secret, asked for at first use: an operator
    command that writes no name and address needs no REGISTER_KEY."""
    from .domain.register import RegisterKeys

    keys = functools.cache(lambda: RegisterKeys(required_secret(settings.register_key, "REGISTER_KEY")))
    return lambda text: keys().recipient_key(text)


def _aws_adapters(settings: Settings, aws) -> dict:
    """The adapters over SQS, S3 and SES, with clients of the container's one boto3 session."""
    from .adapters.s3_exports import S3Exports
    from .adapters.ses_mailer import SesMailer
    from .adapters.sqs_queue import SqsFulfilmentQueue

    def client(service: str):
        return aws.client(service, endpoint_url=settings.aws_endpoint_url)

    return {
        "fulfilment_queue": SqsFulfilmentQueue(
            client("sqs"), settings.fulfilment_queue_url, settings.dead_letter_queue_url
        ),
        "exports": S3Exports(client("s3"), settings.exports_bucket),
        "mailer": SesMailer(client("ses"), settings.email_from) if settings.email_from else None,
    }


def _stripe_adapters(settings: Settings, clock):
    from .adapters.stripe_ledger import StripeLedger
    from .adapters.stripe_payments import StripePayments, stripe_client

    client = stripe_client(required_secret(settings.stripe_secret_key, "STRIPE_SECRET_KEY"), settings.stripe_api_base)
    return StripePayments(client, settings.stripe_webhook_secret, clock), StripeLedger(client)


class _BuiltOnFirstUse:
    """Stands in for an adapter until its first use, so Stripe's SDK is imported only by what uses
    it (the payment routes, the webhook and finance): the manufacturer's routes and the pages
    before payment never import it."""

    def __init__(self, build):
        self._build = build

    def __getattr__(self, name: str):
        return getattr(self._build(), name)


def key_store(table: str, region: str, endpoint_url: str | None):
    from .adapters.dynamodb_keys import DynamoApiKeys, build_key_model

    return DynamoApiKeys(build_key_model(table, region, endpoint_url))


def register_for(settings: OperatorSettings):
    """The register alone, for operator commands."""
    from .adapters.dynamodb import Tables, build_models
    from .adapters.dynamodb_register import DynamoRegister

    tables = Tables(
        settings.register_table, "unused-orders", settings.claims_table, settings.region, settings.aws_endpoint_url
    )
    return DynamoRegister(build_models(tables))


def contacts_for(settings: OperatorSettings):
    """The contact register without its sealer, for the register's commands (which only remove)."""
    from .adapters.dynamodb_contacts import DynamoContacts, build_contact_model

    model = build_contact_model(settings.contacts_table, settings.region, settings.aws_endpoint_url)
    return DynamoContacts(model, None)


def tables_for(settings: Settings):
    from .adapters.dynamodb import Tables

    return Tables(
        settings.register_table,
        settings.orders_table,
        settings.claims_table,
        settings.region,
        settings.aws_endpoint_url,
        settings.attempts_table,
    )


def use(deps: Dependencies) -> None:
    global _dependencies
    _dependencies = deps


def reset() -> None:
    global _dependencies
    _dependencies = None
