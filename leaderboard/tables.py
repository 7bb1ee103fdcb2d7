"""Tables of the site: what a page shows, and the same data written as CSV and JSON beside it."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from challenge.ranking import JOB_MEASURES
from challenge.rules import METRICS
from challenge.text import spreadsheet_safe

TABLE_SCHEMA_VERSION = 1
MISSING_TEXT = "—"


@dataclass(frozen=True)
class Column:
    """A table column: `key` names it in CSV and JSON, `title` on the page."""

    key: str
    title: str
    numeric: bool = False
    note: str = ""
    highlight: bool = False


@dataclass(frozen=True)
class Cell:
    """A value as shown (`text`), as data (`value`), how it sorts, and an optional link."""

    text: str
    value: object = None
    href: str | None = None
    extra: str = ""

    @property
    def sort_key(self) -> str:
        """The cell's data-sort attribute: the number, the text, or "" for a missing value."""
        if isinstance(self.value, bool):
            return str(int(self.value))
        if isinstance(self.value, (int, float)):
            return "" if not math.isfinite(self.value) else repr(float(self.value))
        if self.value is None:
            return "" if self.text in ("", MISSING_TEXT) else self.text.lower()
        return str(self.value).lower()


@dataclass(frozen=True)
class Table:
    """A table of a page; `name` is unique on the page and names its CSV and JSON files."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.name!r}: a row has {len(row)} cells for {len(self.columns)} columns")


def number(value: float | None, *, decimals: int = 3, suffix: str = "") -> Cell:
    """A numeric cell; None or NaN shows as a dash and sorts last."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return Cell(MISSING_TEXT, None)
    return Cell(f"{value:.{decimals}f}{suffix}", float(value))


def metric_decimals(metric: str) -> int:
    if metric in JOB_MEASURES:
        return JOB_MEASURES[metric].decimals
    spec = METRICS.get(metric)
    return 2 if spec is not None and spec.unit == "mm" else 3


def metric_cell(metric: str, value: float | None) -> Cell:
    return number(value, decimals=metric_decimals(metric))


def _plain(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _data_value(cell: Cell) -> object:
    return _plain(cell.value) if cell.value is not None else (None if cell.text == MISSING_TEXT else cell.text)


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    return spreadsheet_safe(value) if isinstance(value, str) else value


def table_csv(table: Table) -> str:
    """The table as CSV: a header of column keys, missing values empty, text that a spreadsheet would
    run as a formula (a team named '=HYPERLINK(...)') neutralised (challenge.text.spreadsheet_safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.key for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(_data_value(cell)) for cell in row])
    return buffer.getvalue()


def table_json(table: Table) -> str:
    """The table as JSON: schema version, columns, and one object per row (missing = null)."""
    document = {
        "schema_version": TABLE_SCHEMA_VERSION,
        "name": table.name,
        "title": table.title,
        "caption": table.caption,
        "columns": [{"key": c.key, "title": c.title} for c in table.columns],
        "rows": [{c.key: _data_value(cell) for c, cell in zip(table.columns, row, strict=True)} for row in table.rows],
    }
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_table_files(table: Table, folder: Path, *, page_stem: str) -> tuple[str, str]:
    """Write `<page_stem>.<name>.csv` and `.json` into `folder`; return their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{page_stem}.{table.name}"
    (folder / f"{stem}.csv").write_text(table_csv(table), encoding="utf-8")
    (folder / f"{stem}.json").write_text(table_json(table), encoding="utf-8")
    return f"{stem}.csv", f"{stem}.json"


def unique_names(tables: Sequence[Table]) -> None:
    names = [t.name for t in tables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"table names must be unique on a page, found {duplicates} more than once")
