"""What the commands share: the app's composition root and the operator's settings, with a
configuration problem reported as the command's error (never a traceback); the one way to print
text that came from outside (`echo`, `shown`); and the one line a Stripe error becomes."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, MutableMapping
from pathlib import Path
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

    with configuration_errors():
        return bootstrap.operator_settings_from_environment()


def dependencies(uses_stripe: bool = False):
    """The app's own composition root, for commands that act on orders and payments. Its secrets
    are refused only where used (a command that uses no Stripe key or REGISTER_KEY needs none);
    `uses_stripe` refuses a missing STRIPE_SECRET_KEY before the command changes anything."""
    from chalicelib import bootstrap
    from chalicelib.settings import required_secret

    with configuration_errors():
        settings = bootstrap.operator_command_settings()
        if uses_stripe:
            required_secret(settings.stripe_secret_key, "STRIPE_SECRET_KEY")
        return bootstrap.build(settings)


@contextlib.contextmanager
def configuration_errors() -> Iterator[None]:
    """A missing or malformed setting (or an unreadable `ssm:` secret) as the command's one-line
    error, naming the variable, never its value."""
    from chalicelib.secrets import SecretsUnavailable
    from chalicelib.settings import SettingsError

    try:
        yield
    except (SettingsError, SecretsUnavailable) as exc:
        raise click.ClickException(f"configuration: {exc}") from None


LOCAL_ENV_FILE = Path(__file__).resolve().parents[2] / ".tracekit-local.env"
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def fill_environment_from_file(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Fill the variables the environment leaves unset from the env file: `TRACEKIT_ENV_FILE` if
    set, else `.tracekit-local.env` at the repository's root (what `make run` writes), read only if
    it exists. A variable already set, even to empty, wins. Lines are KEY=value, taken literally
    (no quotes, no expansion); blank lines and `#` comments are skipped. Returns the file read."""
    path = Path(environ.get("TRACEKIT_ENV_FILE") or LOCAL_ENV_FILE)
    if not path.is_file():
        if environ.get("TRACEKIT_ENV_FILE"):
            raise click.ClickException(f"configuration: TRACEKIT_ENV_FILE names {path}, which is not a file")
        return None
    for name, value in read_environment_file(path).items():
        environ.setdefault(name, value)
    return path


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines; a line that is neither is refused by its number (its text is never shown:
    it may hold a secret)."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise click.ClickException(f"configuration: {path} line {number} is not KEY=value")
        values[match.group(1)] = match.group(2)
    return values
