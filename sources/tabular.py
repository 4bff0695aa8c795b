"""Shared reading of the CSV files people export from their tools.

Row problems carry file, line, column and value, so a finance person can find the cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sources.errors import SourceError


class MissingFile(SourceError):
    """A configured file does not exist: callers may make only the metrics that need it unavailable."""


@dataclass(frozen=True)
class RowProblem:
    path: str
    line: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: column '{self.column}': {self.message} (value {self.value!r})"


def read_csv_rows(path: Path, required_columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with header names normalised to lower case.

    UTF-8 with or without BOM. A missing file or missing column is a SourceError naming the path, and
    so is a file cut short (see ``read_csv``): this reader has no bad-row policy to drop the row under.
    """
    rows, cut = read_csv(path, required_columns)
    if cut is not None:
        raise SourceError(str(cut))
    yield from rows


CUT_SHORT = ("the file ends inside this row, without a final newline: the export looks cut short "
             "(export the file again)")


def read_csv(path: Path, required_columns: list[str]) -> tuple[list[tuple[int, dict[str, str]]], RowProblem | None]:
    """Every (line number, row), and the last row as a problem when the file may have been cut inside it.

    Every tool that exports CSV ends each row, the last one too, with a line break: a file that ends
    without one was cut while being written or copied, and its last row may hold half an amount (-14 of
    -1450.00) that parses as a number. That row comes back separately, never among the rows, for the
    caller's bad-row policy to refuse it or leave it out and say so. A quoted cell left open at the end of
    the file is the same cut."""
    if not path.is_file():
        raise MissingFile(f"file not found: {path}")
    rows: list[tuple[int, dict[str, str]]] = []
    last: tuple[int, list[str]] | None = None
    raw = path.read_bytes()  # one read: the text and whether it ends with a complete row
    with io.StringIO(_decode(path, raw), newline="") as handle:
        # csv.reader and one zip per row: DictReader's per-row bookkeeping cost more than the parsing itself.
        reader = csv.reader(handle)
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
        if header is None:
            raise SourceError(f"{path}: the file is empty (expected a header row)")
        names = [name.strip().lower() for name in header]
        missing = [column for column in required_columns if column not in names]
        if missing:
            raise SourceError(f"{path}:1: missing column(s) {', '.join(missing)}; found {', '.join(names)}")
        width = len(names)
        padding = [""] * width
        named = [(index, name) for index, name in enumerate(names) if name]  # a column without a header is left out
        for row in reader:
            if not row:  # blank lines are not rows, as in csv.DictReader
                continue
            last = (reader.line_num, row)
            if len(row) < width:
                row = row + padding[len(row):]
            if len(named) == width:
                rows.append((reader.line_num, dict(zip(names, map(str.strip, row), strict=False))))  # extra cells dropped
            else:
                rows.append((reader.line_num, {name: row[index].strip() for index, name in named}))
    if last is None or not _cut_at_the_end(raw[-3:], last[1]):
        return rows, None
    line, cells = last
    rows.pop()
    index = min(len(cells), width) - 1
    return rows, RowProblem(str(path), line, names[index] or f"column {index + 1}", cells[index].strip(), CUT_SHORT)


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 (a BOM allowed). A file cut inside its last character keeps what comes before it (its last row
    is then cut short, see ``read_csv``); any other byte that is not UTF-8 is refused with its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.end == len(raw) and exc.reason == "unexpected end of data":
            return raw[:exc.start].decode("utf-8-sig")
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(f"{path}:{line}: the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); "
                          f"export it as UTF-8") from None


def _cut_at_the_end(tail: bytes, last_cells: list[str]) -> bool:
    """True when the file (its last bytes: ``tail``) does not end with a complete row: no final line break,
    or the final line break is inside a quoted cell left open (the reader, not strict, ends that cell at the
    end of the file)."""
    if not tail.endswith((b"\n", b"\r")):
        return True
    if last_cells and last_cells[-1].endswith(("\n", "\r")):
        return not tail.rstrip(b"\r\n").endswith(b'"')
    return False


_CURRENCY = re.compile(r"[\s$€£¥]|USD|EUR|GBP")
FORMULA = ("a formula with no saved value (the workbook was written by a program that does not calculate): "
           "open it in Excel or LibreOffice and save it, or export the values")


def parse_amount(text: str) -> Decimal:
    """Accepts '1,234.50', '$1,234.50', '-$12', '(12.00)' (accounting negative), 'USD 5'."""
    if text.startswith("="):
        raise ValueError(FORMULA)
    # Spreadsheets and PDFs often turn the minus sign into U+2212.
    cleaned = _CURRENCY.sub("", text).replace(",", "").replace("\u2212", "-")
    negative = False
    if cleaned.startswith("(") and cleaned.endswith(")"):
        negative, cleaned = True, cleaned[1:-1]
    if cleaned.startswith("-"):
        negative, cleaned = not negative, cleaned[1:]
    if not cleaned or not re.fullmatch(r"\d+(\.\d+)?", cleaned):
        raise ValueError("not a number")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the regex above already rules this out
        raise ValueError("not a number") from exc
    return -value if negative else value


def parse_date(text: str) -> dt.date:
    """ISO dates only (2026-03-31): other layouts are ambiguous between US and EU exports."""
    if text.startswith("="):
        raise ValueError(FORMULA)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date in YYYY-MM-DD form") from None


SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm")


def read_rows(path: Path, required_columns: list[str], *, sheet: str | None = None,
              policy: BadRowPolicy | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) from a CSV or an XLSX workbook, with the same cell text either way.

    For a workbook the line number is the spreadsheet row number, which is what a person sees. A CSV
    export cut short (``read_csv``) has its last row refused under ``policy`` ('fail': a SourceError
    naming file, line and cell; 'skip': left out and kept as a finding); with no policy it is refused.
    """
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, tuple(required_columns), sheet) if stat else None
    if key is not None and key in _READ:
        _READ.move_to_end(key)
        rows, cut = _READ[key]
    else:
        if path.suffix.lower() in SPREADSHEET_SUFFIXES:
            rows, cut = list(read_xlsx_rows(path, required_columns, sheet=sheet)), None
        else:
            rows, cut = read_csv(path, required_columns)
        if key is not None:
            # The file as read, before any policy: callers with different policies share it.
            _READ[key] = (rows, cut)
            while len(_READ) > _READ_LIMIT:
                _READ.popitem(last=False)
    if cut is not None:
        if policy is None:
            raise SourceError(str(cut))
        policy.reject([cut])
    return iter([(line, dict(row)) for line, row in rows])


# The rows of files read lately, by path, version and columns: a run that compares with earlier periods
# gathers a ledger for each period, and the same unchanged file is read from disk once. Bounded, and
# keyed by modification time and size, so an edited file is read again.
_READ: OrderedDict[tuple, tuple[list[tuple[int, dict[str, str]]], RowProblem | None]] = OrderedDict()
_READ_LIMIT = 64


def read_xlsx_rows(path: Path, required_columns: list[str], *, sheet: str | None = None
                   ) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise MissingFile(f"file not found: {path}")
    # openpyxl is slow to import; only sources that actually read a workbook pay for it.
    import openpyxl

    data = path.read_bytes()  # read once: the values, and the formulas only where one may be unsaved
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged file
        raise SourceError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SourceError(f"{path}: no sheet named {sheet!r} (sheets: {', '.join(workbook.sheetnames)})")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise SourceError(f"{path}: the sheet is empty (expected a header row)")
        names = [cell_text(cell).lower() for cell in header]
        missing = [column for column in required_columns if column not in names]
        if missing:
            raise SourceError(f"{path}:1: missing column(s) {', '.join(missing)}; found {', '.join(n for n in names if n)}")
        found: list[tuple[int, list[str]]] = []
        for number, values in enumerate(rows, start=2):
            texts = [cell_text(value) for value in values]
            if not any(texts):
                continue  # spreadsheets often carry formatted but empty rows at the bottom
            found.append((number, texts))
    finally:
        workbook.close()
    if any("" in texts[:len(names)] for _, texts in found) and _has_formulas(data):
        _show_unsaved_formulas(data, sheet, found, len(names))
    for number, texts in found:
        yield number, {name: (texts[i] if i < len(texts) else "") for i, name in enumerate(names) if name}


def _has_formulas(data: bytes) -> bool:
    """Whether any worksheet of the workbook holds a formula (an <f> element), read from the zip directly."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(b"<f>" in sheet or b"<f " in sheet
                       for name in archive.namelist() if name.startswith("xl/worksheets/") and name.endswith(".xml")
                       for sheet in (archive.read(name),))
    except (zipfile.BadZipFile, KeyError, OSError):
        return False


def _show_unsaved_formulas(data: bytes, sheet: str | None, found: list[tuple[int, list[str]]], width: int) -> None:
    """An empty cell may be a formula whose value was never saved (a workbook written by a program, not by
    Excel or LibreOffice): the formula text goes in its place, so the cell's problem says it is a formula
    instead of "value ''". Read only when some cell is empty and the workbook has formulas."""
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        by_number = dict(found)
        for number, values in enumerate(worksheet.iter_rows(min_row=2, values_only=True), start=2):
            texts = by_number.get(number)
            if texts is None:
                continue
            for index, value in enumerate(values[:width]):
                if index < len(texts) and texts[index] == "" and isinstance(value, str) and value.startswith("="):
                    texts[index] = value
    finally:
        workbook.close()


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a CSV export of it would hold, so both formats parse alike."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        # Formula results carry binary noise (0.1 + 0.2 = 0.30000000000000004); nine decimals keep every
        # real cent and drop the noise, and fixed notation keeps 1e-05 out of the amount parser's way.
        return f"{value:.9f}".rstrip("0").rstrip(".")
    return str(value).strip()


BAD_ROW_POLICIES = ("fail", "skip")


class BadRowPolicy:
    """Applies a source's ``on_bad_row`` setting: fail naming the cell, or skip and keep a finding."""

    def __init__(self, settings: Mapping[str, object], source: str, tenant_id: str, base_dir: Path | None = None):
        # Findings end up in emails: show paths as the config writes them, not the server's layout.
        self.base_dir = base_dir
        policy = settings.get("on_bad_row", "fail")
        if policy not in BAD_ROW_POLICIES:
            raise SourceError(f"tenant '{tenant_id}': sources.{source}.on_bad_row must be 'fail' or 'skip', "
                              f"got {policy!r}")
        self.policy = policy
        self.problems: list[RowProblem] = []

    def reject(self, problems: list[RowProblem]) -> bool:
        """True when the row has problems and must be left out; raises under the 'fail' policy."""
        if not problems:
            return False
        if self.policy == "fail":
            raise SourceError("; ".join(self.shown(p) for p in problems))
        self.problems.extend(problems)
        return True

    def shown(self, problem: RowProblem) -> str:
        if self.base_dir is not None:
            path = Path(problem.path)
            if path.is_relative_to(self.base_dir):
                return str(replace(problem, path=path.relative_to(self.base_dir).as_posix()))
        return str(problem)

    @property
    def findings(self) -> list[str]:
        return [self.shown(p) for p in self.problems]
