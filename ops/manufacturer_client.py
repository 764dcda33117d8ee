"""The manufacturer's reference client: the kit maker's side of the partner API, over HTTP.

It uses only the public API (schemas/manufacturer-api.openapi.json), as the kit maker would,
never tracekit's internals (it shares only chalicelib.reports' neutralising of spreadsheet cells).
The HTTP side is ops/manufacturer_http.py, the CSV files ops/manufacturer_files.py. The key
comes from the environment, never an argument, so it stays out of shell history and process lists.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import click
from tqdm import tqdm

from ops.manufacturer_files import (
    ACKNOWLEDGE_COLUMNS,
    DISPATCH_FIELDS,
    RETURN_COLUMNS,
    FULFILMENT_ID,
    ORDER_COLUMNS,
    read_dispatch_rows,
    write_amendments_csv,
    write_orders_csv,
)
from ops.manufacturer_http import (
    KEY_VARIABLE,
    URL_VARIABLE,
    ManufacturerApi,
    Unreachable,
    Unusable,
    safe_to_send_key,
)

__all__ = ["ORDER_COLUMNS", "manufacturer"]
BACKOFF_SECONDS = 0.5
PAGE_SIZE = 100


@dataclass(frozen=True)
class Connection:
    """Where the API is; the key is read only when a command needs it, so --help works without one."""

    api_url: str | None

    def open(self) -> ManufacturerApi:
        url = (self.api_url or "").strip()
        if not url:
            raise Unusable(f"give the API's base URL with --api URL or {URL_VARIABLE}")
        if not safe_to_send_key(url):
            raise Unusable(f"{url} is not https: the key would cross the network in clear (http is for 127.0.0.1)")
        key = os.environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise Unusable(f"set {KEY_VARIABLE} to your manufacturer API key (it is never taken as an argument)")
        if not (key.isascii() and key.isprintable()):  # it goes in an HTTP header; say so, not a traceback
            raise Unusable(f"{KEY_VARIABLE} is not a key: it holds characters a key never has")
        return ManufacturerApi(url, key, BACKOFF_SECONDS)


def pages(api: ManufacturerApi, path: str, key: str) -> Iterator[dict]:
    """Every item of a listing, following next_cursor to the end."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
        try:
            reply = api.get(path, params)
        except Unreachable as exc:
            raise click.ClickException(f"GET {path}: {exc}") from None
        if not reply.ok:
            raise click.ClickException(f"GET {path} answered {reply.status}: {shown(reply.error_text())}")
        if not isinstance(reply.body, dict) or not isinstance(reply.body.get(key), list):
            raise click.ClickException(f"GET {path} answered 200 without a {key} list: is --api the tracekit API?")
        yield from reply.body[key]
        next_cursor = reply.body.get("next_cursor")
        if not next_cursor or next_cursor == cursor:  # the second test guards against a loop
            return
        cursor = next_cursor


def post_action(api: ManufacturerApi, path: str, body: dict[str, Any] | None = None) -> tuple[bool, str]:
    """(accepted, what happened) for one POST; a refusal or an outage is an answer, not an exception."""
    try:
        reply = api.post(path, body or {})
    except Unreachable as exc:
        return False, f"failed: {exc}"
    if reply.ok:
        return True, str(reply.body.get("state", "ok") if isinstance(reply.body, dict) else "ok")
    verb = "refused" if 400 <= reply.status < 500 else "failed"
    return False, f"{verb} ({reply.status}): {reply.error_text()}"


def order_path(fulfilment_id: str, action: str, collection: str = "fulfilment-orders") -> str:
    return f"/manufacturer/{collection}/{quote(fulfilment_id, safe='')}/{action}"


def progress(total: int | None, description: str, unit: str, quiet: bool) -> tqdm:
    """On stderr, so stdout stays the report a script or a person reads."""
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=quiet)


def shown(text: str) -> str:
    """The text with its control characters escaped: ops.cli.common's one rule (imported when
    used, as ops.cli imports this module)."""
    from ops.cli.common import shown as escaped

    return escaped(text)


def say(text: str) -> None:
    """One report line on stdout, printed above any progress bar rather than through it, its
    control characters escaped (the API's words, and the file's, are printed as they are)."""
    tqdm.write(shown(text), file=sys.stdout)


def utc_today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def dispatch_row(api: ManufacturerApi, line: int, row: dict[str, str]) -> tuple[bool, str]:
    """Report one row's dispatch; (accepted, the line to print)."""
    return report_row(api, line, row, "dispatch", DISPATCH_FIELDS, "dispatched")


def return_row(api: ManufacturerApi, line: int, row: dict[str, str]) -> tuple[bool, str]:
    """Report one row's parcel returned to sender; (accepted, the line to print)."""
    return report_row(api, line, row, "returned", RETURN_COLUMNS[1:], "returned")


def report_row(
    api: ManufacturerApi, line: int, row: dict[str, str], action: str, fields: tuple[str, ...], done: str
) -> tuple[bool, str]:
    fulfilment_id = (row.get("fulfilment_id") or "").strip()
    if not FULFILMENT_ID.fullmatch(fulfilment_id):
        # Not sent: a slash or an empty id would change which route the request reaches.
        return (
            False,
            f"line {line}: {fulfilment_id or '(empty)'} refused (not sent): fulfilment_id: not a fulfilment id",
        )
    body = {name: (row.get(name) or "").strip() for name in fields}
    accepted, outcome = post_action(api, order_path(fulfilment_id, action), body)
    return accepted, f"line {line}: {fulfilment_id} {done if accepted else outcome}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api", "api_url", envvar=URL_VARIABLE, metavar="URL", help=f"The API's base URL (or {URL_VARIABLE}).")
@click.pass_context
def manufacturer(ctx: click.Context, api_url: str | None) -> None:
    """The kit maker's client for tracekit's manufacturer API.

    The key is read from TRACEKIT_MANUFACTURER_KEY, never from an argument. Exit status 2 means
    nothing could be done: the key was refused, the URL is wrong or the input is unusable."""
    ctx.obj = Connection(api_url)


@manufacturer.command()
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
    help="Where the dated CSV goes.",
)
@click.option("--no-accept", is_flag=True, help="Only write the CSV; do not accept the orders.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def poll(connection: Connection, out_dir: Path, no_accept: bool, quiet: bool) -> None:
    """Write every open fulfilment order to fulfilment-orders-YYYY-MM-DD.csv and accept them.

    The CSV holds the whole outstanding list (released or accepted, not yet dispatched), oldest
    first. Cells a spreadsheet would run as a formula are prefixed with a quote."""
    api = connection.open()
    with progress(None, "Fetching", "order", quiet) as bar:
        orders = []
        for order in pages(api, "/manufacturer/fulfilment-orders", "fulfilment_orders"):
            orders.append(order)
            bar.update(1)
    # Written before anything is accepted: an accepted order must already be on disk.
    path = write_orders_csv(out_dir, orders, utc_today())
    say(f"{path}: {len(orders)} fulfilment orders written")
    if no_accept:
        click.echo("none accepted (--no-accept)")
        return
    refused = accept_all(api, orders, quiet)
    click.echo(f"{len(orders) - refused} accepted, {refused} not accepted")
    if refused:
        sys.exit(1)


def accept_all(api: ManufacturerApi, orders: list[dict], quiet: bool) -> int:
    """Accept each order (a no-op for one already accepted); the number not accepted."""
    refused = 0
    with progress(len(orders), "Accepting", "order", quiet) as bar:
        for order in orders:
            fulfilment_id = str(order.get("fulfilment_id", ""))
            accepted, outcome = post_action(api, order_path(fulfilment_id, "accept"))
            if not accepted:
                refused += 1
                say(f"{fulfilment_id}: not accepted, {outcome}")
            bar.update(1)
    return refused


@manufacturer.command("upload-dispatches")
@click.argument("csv_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def upload_dispatches(connection: Connection, csv_file: Path, quiet: bool) -> None:
    """Report dispatches from a CSV: fulfilment_id, kit_code, carrier, tracking_reference,
    dispatched_at (ISO 8601 in UTC, like 2026-11-29T10:15:00Z).

    One line per row says whether it was recorded. Sending the same file again is safe. Exit
    status 0 if every row was recorded, 1 if any was refused or failed, 2 if the file is unusable."""
    _post_rows(connection, read_dispatch_rows(csv_file), dispatch_row, "dispatches", quiet)


@manufacturer.command("upload-returns")
@click.argument("csv_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def upload_returns(connection: Connection, csv_file: Path, quiet: bool) -> None:
    """Report dispatched parcels returned to sender from a CSV: fulfilment_id, reason.

    One line per row, as upload-dispatches; sending the same file again is safe. Exit status 0 if
    every row was recorded, 1 if any was refused or failed, 2 if the file is unusable."""
    _post_rows(connection, read_dispatch_rows(csv_file, RETURN_COLUMNS), return_row, "returns", quiet)


def _post_rows(connection: Connection, rows, post_row, what: str, quiet: bool) -> None:
    """Each row to the API with a line saying how it went; exit status 1 if any was not recorded."""
    api = connection.open()
    accepted = 0
    with progress(len(rows), what.capitalize(), "row", quiet) as bar:
        for line, row in rows:
            ok, report = post_row(api, line, row)
            accepted += ok
            say(report)
            bar.update(1)
    click.echo(f"{accepted} of {len(rows)} {what} recorded")
    if accepted < len(rows):
        sys.exit(1)


@manufacturer.command()
@click.option("--acknowledge", is_flag=True, help="Tell tracekit you will not send each one.")
@click.pass_obj
def cancellations(connection: Connection, acknowledge: bool) -> None:
    """List cancelled orders you must NOT send, and optionally acknowledge them."""
    api = connection.open()
    # Listed in full first: acknowledging drops an item from the list, which would shift the pages.
    items = list(pages(api, "/manufacturer/cancellations", "cancellations"))
    failed = 0
    for item in items:
        fulfilment_id = str(item.get("fulfilment_id", ""))
        text = f"{fulfilment_id} {item.get('order_reference')} cancelled {item.get('cancelled_at')}: do not send"
        if acknowledge:
            ok, outcome = post_action(api, order_path(fulfilment_id, "acknowledge", "cancellations"))
            failed += not ok
            text += ", acknowledged" if ok else f"; acknowledgement {outcome}"
        say(text)
    summary = f"pending cancellations: {len(items)}"
    click.echo(summary + (f", acknowledged: {len(items) - failed}" if acknowledge else ""))
    if failed:
        sys.exit(1)


# -- Address amendments: the holder changed where a released order goes ----------------------------


@manufacturer.command()
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
    help="Where the dated CSV goes.",
)
@click.pass_obj
def amendments(connection: Connection, out_dir: Path) -> None:
    """Write every unacknowledged address amendment to address-amendments-YYYY-MM-DD.csv: post
    these orders to the recipient shown. Then acknowledge them with acknowledge-amendments."""
    api = connection.open()
    items = list(pages(api, "/manufacturer/amendments", "amendments"))
    path = write_amendments_csv(out_dir, items, utc_today())
    say(f"{path}: {len(items)} address amendments written")


@manufacturer.command("acknowledge-amendments")
@click.argument("csv_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def acknowledge_amendments(connection: Connection, csv_file: Path, quiet: bool) -> None:
    """Acknowledge address amendments from a CSV with fulfilment_id and amendment columns (the
    amendments command's file will do). Sending the same file again is safe. Exit status 0 if every
    row was recorded, 1 if any was refused or failed, 2 if the file is unusable."""
    rows = read_dispatch_rows(csv_file, ACKNOWLEDGE_COLUMNS)
    _post_rows(connection, rows, acknowledge_row, "acknowledgements", quiet)


def acknowledge_row(api: ManufacturerApi, line: int, row: dict[str, str]) -> tuple[bool, str]:
    fulfilment_id = (row.get("fulfilment_id") or "").strip()
    number = (row.get("amendment") or "").strip()
    if not FULFILMENT_ID.fullmatch(fulfilment_id) or not number.isdigit():
        return False, f"line {line}: {fulfilment_id or '(empty)'} refused (not sent): not a fulfilment id and amendment"
    path = order_path(fulfilment_id, "acknowledge", "amendments")
    accepted, outcome = post_action(api, path, {"amendment": int(number)})
    return accepted, f"line {line}: {fulfilment_id} amendment {number} {'acknowledged' if accepted else outcome}"
