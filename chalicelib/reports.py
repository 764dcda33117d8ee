"""Finance's files: CSV that opens cleanly in Excel, and XLSX through openpyxl. Both stream rows
as they come; only the discrepancy sections and the summary are written at the end."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, BinaryIO, Iterable

from .domain.audit import AuditEntry
from .domain.kit_statement import Statement
from .domain.reconciliation import ROW_COLUMNS, Discrepancy, Finding
from .domain.reconciliation_rows import pounds
from .domain.times import to_iso

if TYPE_CHECKING:
    from .ports import Report

FINDING_COLUMNS = ("order_reference", "balance_transaction_id", "detail")
# A cell beginning with one of these is a formula to Excel; names and references come from outside.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The rows' days and times, ISO text in the CSV, Excel dates in the XLSX (UTC, naive: Excel has no zones).
DATE_COLUMNS = frozenset({"order_date", "transaction_date", "payout_date"})
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def neutralise(value: object) -> object:
    """Text that Excel would run as a formula gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def group_findings(findings: list[Finding]) -> dict[Discrepancy, list[Finding]]:
    grouped: dict[Discrepancy, list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.kind].append(finding)
    return grouped


class CsvReport:
    """Sections, each headed `# <name>`: rows, then each kind of discrepancy, then the summary."""

    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, binary: BinaryIO):
        self._text = io.TextIOWrapper(binary, encoding="utf-8", newline="", write_through=True)
        self._text.write("\ufeff")  # Excel reads UTF-8 only with the byte-order mark
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        self._writer.writerow(["# Reconciliation rows"])
        self._writer.writerow(ROW_COLUMNS)
        self.rows = 0

    def row(self, values: dict) -> None:
        self._writer.writerow([neutralise(values[column]) for column in ROW_COLUMNS])
        self.rows += 1

    def finish(self, findings: list[Finding], summary: list[tuple[str, int | str]]) -> None:
        grouped = group_findings(findings)
        for kind in Discrepancy:
            self._writer.writerows([[], [f"# Discrepancies: {kind.value} ({len(grouped[kind])})"], FINDING_COLUMNS])
            self._writer.writerows([_finding_cells(f) for f in grouped[kind]])
        self._writer.writerows([[], ["# Summary"], ["item", "value"]])
        self._writer.writerows([[neutralise(label), neutralise(value)] for label, value in summary])
        self._text.flush()
        self._text.detach()  # hand the stream back open: the caller owns it


class XlsxReport:
    """One sheet of rows, one per kind of discrepancy, one summary (openpyxl's streaming mode)."""

    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    extension = "xlsx"

    def __init__(self, stream: BinaryIO):
        from openpyxl import Workbook  # imported only when a workbook is wanted

        self._stream = stream
        self._book = Workbook(write_only=True)
        self._rows = self._book.create_sheet("Rows")
        self._rows.append(list(ROW_COLUMNS))
        self.rows = 0

    def row(self, values: dict) -> None:
        self._rows.append([self._cell(column, values[column]) for column in ROW_COLUMNS])
        self.rows += 1

    def _cell(self, column: str, value):
        """A date column's ISO text becomes an Excel date (a number with a format), as finance sorts and sums by it."""
        if column in DATE_COLUMNS and value:
            return excel_date(self._rows, value)
        return neutralise(value)

    def finish(self, findings: list[Finding], summary: list[tuple[str, int | str]]) -> None:
        grouped = group_findings(findings)
        for kind in Discrepancy:
            sheet = self._book.create_sheet(kind.name.replace("_", " ").title()[:31])
            sheet.append([f"{kind.value} ({len(grouped[kind])})"])
            sheet.append(list(FINDING_COLUMNS))
            for finding in grouped[kind]:
                sheet.append(_finding_cells(finding))
        sheet = self._book.create_sheet("Summary")
        sheet.append(["item", "value"])
        for label, value in summary:
            sheet.append([neutralise(label), neutralise(value)])
        self._book.save(self._stream)


def excel_date(sheet, value: str | date | datetime):
    """A cell holding a real date (or a UTC datetime, made naive as Excel requires) and its format."""
    from openpyxl.cell import WriteOnlyCell

    moment = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else value
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if isinstance(moment, datetime):
        cell = WriteOnlyCell(sheet, value=_naive_utc(moment))
        cell.number_format = DATETIME_FORMAT
        return cell
    cell = WriteOnlyCell(sheet, value=moment)
    cell.number_format = DATE_FORMAT
    return cell


def _naive_utc(moment: datetime) -> datetime:
    """The tracekit times are UTC; one with another offset is converted first."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _finding_cells(finding: Finding) -> list:
    return [
        neutralise(finding.order_reference or ""),
        neutralise(finding.balance_transaction_id or ""),
        neutralise(finding.detail),
    ]


def report_for(fmt: str, stream: BinaryIO) -> Report:
    """A writer over a binary stream for 'csv' or 'xlsx'; the caller owns (and closes) the stream."""
    writers: dict[str, type[CsvReport] | type[XlsxReport]] = {"csv": CsvReport, "xlsx": XlsxReport}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}")
    return writers[fmt](stream)


# -- the kit maker's statement -------------------------------------------------------------------
# Money as in the reconciliation: integer pence, with the same sum in pounds beside it (a number).
STATEMENT_LINE_COLUMNS = ("fulfilment_id", "kind", "at", "unit_price_pence", "unit_price_pounds")
STATEMENT_TOTAL_COLUMNS = ("kind", "kits", "amount_pence", "amount_pounds")


def statement_totals(result: Statement) -> list[tuple[str, int, int]]:
    """(kind, kits, amount in pence) for every kind, then the total: the statement's last section."""
    lines = [(kind.value, result.counts[kind], result.amounts_pence[kind]) for kind in result.counts]
    return [*lines, ("total", sum(result.counts.values()), result.total_pence)]


def write_statement_csv(stream: BinaryIO, result: Statement) -> None:
    """One line per kit, a blank line, then the kits and amounts by kind and the total."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
    text.write("\ufeff")  # as the reconciliation: Excel reads UTF-8 only with the byte-order mark
    out = csv.writer(text, lineterminator="\r\n")
    out.writerow(STATEMENT_LINE_COLUMNS)
    for line in result.lines:
        price = line.unit_price_pence
        out.writerow([neutralise(line.fulfilment_id), line.kind.value, to_iso(line.at), price, pounds(price)])
    out.writerow([])
    out.writerow(STATEMENT_TOTAL_COLUMNS)
    out.writerows([[kind, kits, pence, pounds(pence)] for kind, kits, pence in statement_totals(result)])
    text.flush()
    text.detach()  # hand the stream back open: the caller owns it


def write_statement_xlsx(stream: BinaryIO, result: Statement) -> None:
    """Two sheets, Kits and Totals, with the CSV's columns; times are Excel dates, money numbers."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    kits = book.create_sheet("Kits")
    kits.append(list(STATEMENT_LINE_COLUMNS))
    for line in result.lines:
        price = line.unit_price_pence
        kits.append([neutralise(line.fulfilment_id), line.kind.value, excel_date(kits, line.at), price, pounds(price)])
    totals = book.create_sheet("Totals")
    totals.append(list(STATEMENT_TOTAL_COLUMNS))
    for kind, count, pence in statement_totals(result):
        totals.append([kind, count, pence, pounds(pence)])
    book.save(stream)


STATEMENT_WRITERS = {"csv": write_statement_csv, "xlsx": write_statement_xlsx}


def write_statement(fmt: str, stream: BinaryIO, result: Statement) -> None:
    """The statement as 'csv' or 'xlsx' over a binary stream; the caller owns (and closes) the stream."""
    if fmt not in STATEMENT_WRITERS:
        raise ValueError(f"unknown format {fmt!r}")
    STATEMENT_WRITERS[fmt](stream, result)


AUDIT_COLUMNS = ("at", "actor", "action", "order_reference", "reason", "detail")


def audit_log_csv(entries: Iterable[AuditEntry]) -> str:
    """The staff audit log's entries as CSV, one row each, formulas neutralised (a reason is typed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_COLUMNS)
    for e in entries:
        detail = "; ".join(f"{k}={v}" for k, v in e.detail)
        row = (to_iso(e.at), e.actor, e.action, e.order_reference or "", e.reason or "", detail)
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()
