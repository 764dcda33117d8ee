"""API keys for the manufacturer and finance."""

from __future__ import annotations

import click

from chalicelib.settings import SettingsError
from ops.cli.common import echo


@click.group()
def keys() -> None:
    """API keys for the manufacturer and finance (shown once, stored only as hashes)."""


def _key_store():
    from chalicelib import bootstrap
    from chalicelib.settings import KeyStoreSettings

    try:
        settings = KeyStoreSettings.from_environ()
    except SettingsError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    return bootstrap.key_store(settings.api_keys_table, settings.region, settings.aws_endpoint_url)


@keys.command("create")
@click.option("--scope", type=click.Choice(["manufacturer", "finance"]), required=True)
@click.option("--label", required=True, help="Whose key this is, e.g. the company's name.")
def create_key(scope: str, label: str) -> None:
    """Create a key. The token is printed once: hand it over securely; it cannot be shown again."""
    from chalicelib.domain.credentials import Scope
    from chalicelib.services.credentials import create_api_key
    from chalicelib.timeutil import utc_now

    key, token = create_api_key(Scope(scope), label, _key_store(), utc_now())
    echo(f"key id {key.key_id} ({key.scope.value}, {key.label})", err=True)
    click.echo(token)


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key at once (API Gateway may serve a cached decision for up to a minute)."""
    from chalicelib.services.credentials import revoke_api_key
    from chalicelib.timeutil import utc_now

    key = revoke_api_key(key_id, _key_store(), utc_now())
    if key is None:
        raise click.ClickException(f"no key {key_id!r}")
    echo(f"key {key.key_id} ({key.scope.value}, {key.label}) revoked")


@keys.command("list")
def list_keys() -> None:
    """Every key: id, scope, label, created, revoked. Never the secret (it is not stored)."""
    from chalicelib.domain.times import to_iso

    for key in _key_store().all():
        revoked = f"revoked {to_iso(key.revoked_at)}" if key.revoked_at else "active"
        echo(f"{key.key_id}  {key.scope.value:<12} {to_iso(key.created_at)}  {revoked:<30} {key.label}")
