"""Shared reading of the CSV files people export from their tools.

Row problems carry file, line, column and value, so a finance person can find the cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flows.errors import SourceError


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

    UTF-8 with or without BOM. A missing file or missing column is a SourceError naming the path.
    """
    if not path.is_file():
        raise SourceError(f"file not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise SourceError(f"{path}: the file is empty (expected a header row)")
        normalised = [name.strip().lower() for name in reader.fieldnames]
        missing = [column for column in required_columns if column not in normalised]
        if missing:
            raise SourceError(f"{path}:1: missing column(s) {', '.join(missing)}; found {', '.join(normalised)}")
        reader.fieldnames = normalised
        for row in reader:
            yield reader.line_num, {key: (value or "").strip() for key, value in row.items() if key}


_CURRENCY = re.compile(r"[\s$€£¥]|USD|EUR|GBP")


def parse_amount(text: str) -> Decimal:
    """Accepts '1,234.50', '$1,234.50', '-$12', '(12.00)' (accounting negative), 'USD 5'."""
    cleaned = _CURRENCY.sub("", text).replace(",", "")
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
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date in YYYY-MM-DD form") from None
