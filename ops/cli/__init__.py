"""One command line for all of tracekit's operator tasks.

Configuration comes from the same environment variables the app reads (docs/configuration.md); secrets
are never taken as arguments, so they stay out of shell history. Each group of commands is a
module of this package.
"""

from __future__ import annotations

import click

from ops.cli.common import configuration_errors, fill_environment_from_file, is_stripe_error, shown, stripe_error_line
from ops.cli.finance import finance
from ops.cli.fulfilment import fulfilment
from ops.cli.keys import keys
from ops.cli.orders import order, refund
from ops.cli.privacy import contacts, erase
from ops.cli.register import register
from ops.cli.support import support
from ops.manufacturer_client import manufacturer


class Commands(click.Group):
    """The command group, with one rule for every command's failures: an error from Stripe's SDK
    that no command answered itself is one clear line (exit status 1), never a traceback, and
    every error line is printed with its control characters escaped."""

    def invoke(self, ctx: click.Context):
        try:
            with configuration_errors():  # a secret refused where it is used (settings.required_secret)
                return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = shown(exc.message)
            raise
        except Exception as exc:
            if not is_stripe_error(exc):
                raise
            raise click.ClickException(stripe_error_line(exc)) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """tracekit: operator tasks for the property-marking kit campaign.

    \b
    Configuration: the app's environment variables (docs/configuration.md).
    A variable unset in the environment is taken from the env file, if it
    exists: TRACEKIT_ENV_FILE, else .tracekit-local.env at the repository's
    root (written by `make run` for its stack). A variable already set in
    the environment always wins. Each command needs only the secrets it uses.
    """
    fill_environment_from_file()


for command in (register, refund, order, keys, fulfilment, erase, contacts, manufacturer, finance, support):
    main.add_command(command)
