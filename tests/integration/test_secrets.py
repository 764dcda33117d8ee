"""Secrets from SSM Parameter Store (on moto): the environment names a parameter, never holds the
secret; a missing one is named in a clear error that shows no value."""

from __future__ import annotations

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.secrets import SecretsUnavailable


@pytest.fixture
def ssm(settings):
    return boto3.client("ssm", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)


def test_secrets_named_in_the_environment_are_read_from_parameter_store(environment, ssm):
    values = {
        "register-key": "r" * 40,
        "journey-key": "j" * 40,
        "stripe-secret": "sk_test_from_ssm",
        "webhook-secret": "whsec_from_ssm",
    }
    for name, value in values.items():
        ssm.put_parameter(Name=f"/tracekit/test/{name}", Value=value, Type="SecureString")
    env = {
        **environment,
        "REGISTER_KEY": "ssm:/tracekit/test/register-key",
        "JOURNEY_KEY": "ssm:/tracekit/test/journey-key",
        "STRIPE_SECRET_KEY": "ssm:/tracekit/test/stripe-secret",
        "STRIPE_WEBHOOK_SECRET": "ssm:/tracekit/test/webhook-secret",
    }
    settings = bootstrap.settings_from_environment(env)
    assert (settings.register_key, settings.journey_key) == (b"r" * 40, b"j" * 40)
    assert (settings.stripe_secret_key, settings.stripe_webhook_secret) == ("sk_test_from_ssm", "whsec_from_ssm")


def test_a_missing_parameter_is_named_and_no_value_is_shown(environment, ssm):
    ssm.put_parameter(Name="/tracekit/test/journey-key", Value="j" * 40, Type="SecureString")
    env = {**environment, "REGISTER_KEY": "ssm:/tracekit/test/nowhere", "JOURNEY_KEY": "ssm:/tracekit/test/journey-key"}
    with pytest.raises(SecretsUnavailable) as missing:
        bootstrap.settings_from_environment(env)
    assert "/tracekit/test/nowhere" in str(missing.value) and "jjjj" not in str(missing.value)
