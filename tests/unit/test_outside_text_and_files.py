"""The operator's side of inputs from outside: text printed with its control characters escaped,
a Stripe error as one line, and files of personal data written 0600 and whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest
import stripe

from ops.cli.common import shown, stripe_error_line
from ops.manufacturer_files import write_orders_csv
from ops.private_files import private_file


@pytest.mark.parametrize(
    "text, printed",
    [
        ("box crushed\n2026-12-01  operator:mallory", "box crushed\\n2026-12-01  operator:mallory"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("next\x85line\x7f", "next\\x85line\\x7f"),
        (
            "RM123\u202eBG987 \u2066x\u2069 \u200e\u200f\u061c",
            "RM123\\u202eBG987 \\u2066x\\u2069 \\u200e\\u200f\\u061c",
        ),
        ("Chloé Ελληνικά 😀 رقم", "Chloé Ελληνικά 😀 رقم"),
    ],
)
def test_printed_text_has_its_control_characters_escaped_and_nothing_else(text, printed):
    assert shown(text) == printed


def test_a_stripe_error_is_one_line_naming_its_kind_and_code():
    error = stripe.InvalidRequestError(
        "Refund amount (£5.00) is greater than\nunrefunded amount on charge (£3.95)", "amount", code="amount_too_large"
    )
    line = stripe_error_line(error)
    assert "\n" not in line
    assert line == (
        "Stripe refused (InvalidRequestError amount_too_large): "
        "Refund amount (£5.00) is greater than unrefunded amount on charge (£3.95)"
    )


def test_a_private_file_is_mode_0600_whatever_the_umask_and_no_part_is_left(tmp_path):
    old = os.umask(0)
    try:
        with private_file(tmp_path / "export.csv") as handle:
            handle.write("a,b\n")
    finally:
        os.umask(old)
    path = tmp_path / "export.csv"
    assert path.read_text() == "a,b\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_a_failure_while_writing_leaves_no_part_and_the_earlier_file_intact(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("yesterday's\n")
    with pytest.raises(RuntimeError):
        with private_file(path) as handle:
            handle.write("half of today")
            assert (tmp_path / "export.csv.part").exists() and path.read_text() == "yesterday's\n"
            raise RuntimeError("Stripe went away")
    assert path.read_text() == "yesterday's\n" and [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_a_file_that_must_not_be_replaced_is_not(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("earlier\n")
    with pytest.raises(FileExistsError):
        with private_file(path, overwrite=False) as handle:
            handle.write("later")
    assert path.read_text() == "earlier\n" and [p.name for p in tmp_path.iterdir()] == ["orders.csv"]


def test_a_part_being_written_by_another_run_is_not_touched(tmp_path):
    partial = tmp_path / "export.csv.part"
    partial.write_text("another run's rows")
    with pytest.raises(FileExistsError):
        with private_file(tmp_path / "export.csv"):
            pass
    assert partial.read_text() == "another run's rows" and not (tmp_path / "export.csv").exists()


def test_the_kit_makers_csv_is_private_and_a_second_one_the_same_day_is_numbered(tmp_path):
    first = write_orders_csv(tmp_path, [{"fulfilment_id": "F-1", "recipient": {"name": "Ada"}}], "2026-12-02")
    (tmp_path / "fulfilment-orders-2026-12-02-2.csv.part").write_text("a poll writing at this moment")
    third = write_orders_csv(tmp_path, [], "2026-12-02")
    assert (first.name, third.name) == ("fulfilment-orders-2026-12-02.csv", "fulfilment-orders-2026-12-02-3.csv")
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (first, third))
    assert "Ada" in first.read_text(encoding="utf-8-sig")


def test_a_failure_writing_the_kit_makers_csv_leaves_nothing(tmp_path):
    with pytest.raises(AttributeError):  # the second order is not a mapping: found while writing
        write_orders_csv(tmp_path, [{"fulfilment_id": "F-1"}, object()], "2026-12-02")  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []
