"""What the commands share: the app's composition root and the operator's settings, with a
configuration problem reported as the command's error (never a traceback); the one way to print
text that came from outside (`echo`, `shown`); and the one line a Stripe error becomes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from chalicelib.settings import OperatorSettings

# Control characters (Unicode category Cc) and the controls that reorder text: stored or remote text
# holding one could forge a line of the output, or make it read other than it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> str:
    """The text with every control character escaped (`\\n`, `\\x1b`, `\\u202e`), so what a partner or
    a stored record holds is printed as itself and can never start a line or turn text around."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(value))


def echo(line: object, err: bool = False) -> None:
    """Print one line of a command's report, control characters escaped (see `shown`)."""
    click.echo(shown(line), err=err)


def is_stripe_error(exc: BaseException) -> bool:
    """An error of Stripe's SDK, told by its module so that stripe is imported only when used."""
    return type(exc).__module__.split(".")[0] == "stripe"


def stripe_error_line(exc: Exception) -> str:
    """A Stripe SDK error as one line for the operator: its kind, code and Stripe's own message
    (which names no person), escaped and on one line."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "user_message", None) or str(exc) or "no detail"
    kind = type(exc).__name__ + (f" {code}" if code else "")
    return shown(f"Stripe refused ({kind}): {' '.join(str(message).split())}")


def operator_settings() -> OperatorSettings:
    from chalicelib import bootstrap
    from chalicelib.secrets import SecretsUnavailable
    from chalicelib.settings import SettingsError

    try:
        return bootstrap.operator_settings_from_environment()
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def dependencies():
    """The app's own composition root, for commands that act on orders and payments."""
    from chalicelib import bootstrap
    from chalicelib.secrets import SecretsUnavailable
    from chalicelib.settings import SettingsError

    try:
        return bootstrap.build(bootstrap.settings_from_environment())
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None
