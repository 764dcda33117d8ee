"""The manufacturer's client's files: the dated CSV of fulfilment orders it writes, and the CSV of
dispatches it reads. Cells a spreadsheet would run as a formula are neutralised (chalicelib.reports)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from chalicelib.reports import neutralise
from ops.manufacturer_http import Unusable
from ops.private_files import private_file

ORDER_COLUMNS = (
    "fulfilment_id",
    "order_reference",
    "product_code",
    "quantity",
    "recipient_name",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "created_at",
)
DISPATCH_COLUMNS = ("fulfilment_id", "kit_code", "carrier", "tracking_reference", "dispatched_at")
DISPATCH_FIELDS = DISPATCH_COLUMNS[1:]
RETURN_COLUMNS = ("fulfilment_id", "reason")
# Loose on purpose (the API decides); it only keeps a stray value from changing the URL's path.
FULFILMENT_ID = re.compile(r"[A-Za-z0-9-]{1,40}")


def order_row(order: dict) -> list[str]:
    """One fulfilment order as the CSV's columns (ORDER_COLUMNS), every cell neutralised."""
    recipient = order.get("recipient") or {}
    lines = [*(recipient.get("address_lines") or []), "", ""]
    values = (
        order.get("fulfilment_id"),
        order.get("order_reference"),
        order.get("product_code"),
        order.get("quantity"),
        recipient.get("name"),
        lines[0],
        lines[1],
        recipient.get("town"),
        recipient.get("postcode"),
        order.get("created_at"),
    )
    return [neutralise("" if value is None else str(value)) for value in values]


def write_orders_csv(out_dir: Path, orders: list[dict], day: str) -> Path:
    """fulfilment-orders-<day>.csv, or -2, -3... if taken. Never overwrites an earlier file, even
    one a second poll is writing at the same moment; written mode 0600 and whole or not at all
    (ops.private_files): it holds names and addresses."""
    return _write_new_csv(out_dir, f"fulfilment-orders-{day}", ORDER_COLUMNS, (order_row(o) for o in orders))


def _write_new_csv(out_dir: Path, stem: str, columns, rows) -> Path:
    """<stem>.csv, or <stem>-2.csv, -3... if taken, never overwriting one (not even one another
    poll is writing at the same moment), mode 0600, whole or not at all."""
    rows = list(rows)
    number = 1
    while True:
        path = out_dir / (f"{stem}.csv" if number == 1 else f"{stem}-{number}.csv")
        if not path.exists():
            try:
                # utf-8-sig: the BOM makes spreadsheets read accented names as UTF-8.
                with private_file(path, "w", overwrite=False, newline="", encoding="utf-8-sig") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(columns)
                    writer.writerows(rows)
                return path
            except FileExistsError:
                pass
        number += 1


# The kit maker's address amendments: the current recipient of each, by amendment number.
AMENDMENT_COLUMNS = (
    "fulfilment_id",
    "order_reference",
    "amendment",
    "recipient_name",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "amended_at",
)
ACKNOWLEDGE_COLUMNS = ("fulfilment_id", "amendment")


def amendment_row(item: dict) -> list[str]:
    """One amendment as AMENDMENT_COLUMNS, every cell neutralised."""
    recipient = item.get("recipient") or {}
    lines = [*(recipient.get("address_lines") or []), "", ""]
    values = (
        item.get("fulfilment_id"),
        item.get("order_reference"),
        item.get("amendment"),
        recipient.get("name"),
        lines[0],
        lines[1],
        recipient.get("town"),
        recipient.get("postcode"),
        item.get("amended_at"),
    )
    return [neutralise("" if value is None else str(value)) for value in values]


def write_amendments_csv(out_dir: Path, items: list[dict], day: str) -> Path:
    """address-amendments-<day>.csv (or -2, -3...), never overwriting, mode 0600, whole or not at
    all, as the orders' CSV: it holds names and addresses."""
    return _write_new_csv(out_dir, f"address-amendments-{day}", AMENDMENT_COLUMNS, (amendment_row(i) for i in items))


def read_dispatch_rows(path: Path, columns: tuple[str, ...] = DISPATCH_COLUMNS) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every row, or Unusable for a file that cannot be used at all (a
    dispatch file by default; the returns file names its own columns)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
            missing = [column for column in columns if column not in reader.fieldnames]
            if missing:
                raise Unusable(f"{path} lacks the columns: {', '.join(missing)} (needs {', '.join(columns)})")
            # line_num counts physical lines, so a quoted newline does not shift the numbers.
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Unusable(f"cannot read {path}: {exc}") from None
