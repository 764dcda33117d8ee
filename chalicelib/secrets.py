"""Secrets from SSM Parameter Store: in AWS a secret's environment variable holds
`ssm:/tracekit/<stage>/<name>` (a SecureString), never the secret; it is read once, in one
request, when the composition root first builds the settings."""

from __future__ import annotations

from typing import Mapping

SECRET_VARIABLES = ("REGISTER_KEY", "JOURNEY_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
PREFIX = "ssm:"


class SecretsUnavailable(RuntimeError):
    """A named parameter is missing or unreadable; the message names it, never a value."""


def resolve(env: Mapping[str, str], ssm_client_factory) -> dict[str, str]:
    """The environment with every `ssm:` reference among the secret variables replaced by its value."""
    wanted = {name: env[name][len(PREFIX) :] for name in SECRET_VARIABLES if env.get(name, "").startswith(PREFIX)}
    if not wanted:
        return dict(env)
    response = ssm_client_factory().get_parameters(Names=sorted(set(wanted.values())), WithDecryption=True)
    if response.get("InvalidParameters"):
        raise SecretsUnavailable("parameters not found: " + ", ".join(sorted(response["InvalidParameters"])))
    values = {p["Name"]: p["Value"] for p in response["Parameters"]}
    return {**env, **{name: values[path] for name, path in wanted.items()}}
