"""What the commands share: the app's composition root and the operator's settings, with a
configuration problem reported as the command's error (never a traceback)."""

from __future__ import annotations

import click

from chalicelib.settings import OperatorSettings, SettingsError


def operator_settings() -> OperatorSettings:
    from chalicelib import bootstrap
    from chalicelib.secrets import SecretsUnavailable

    try:
        return bootstrap.operator_settings_from_environment()
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def dependencies():
    """The app's own composition root, for commands that act on orders and payments."""
    from chalicelib import bootstrap

    from chalicelib.secrets import SecretsUnavailable

    try:
        return bootstrap.build(bootstrap.settings_from_environment())
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None
