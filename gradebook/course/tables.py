"""Reading the tables people hand us: CSV (comma or semicolon, with or without a BOM) and XLSX.

Rows come back with their line number in the file, so every error can name ``file:row``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from gradebook.errors import InputError

MAX_ROWS = 200_000


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]

    def get(self, key: str) -> str:
        return (self.values.get(key) or "").strip()


def _csv_rows(path: Path) -> tuple[list[str], list[Row]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (save the file as CSV UTF-8): {exc}") from exc
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise InputError(f"{path}:{line}: {len(cells)} fields but the header has {len(header)} "
                             "(a value with a comma or semicolon must be quoted)")
        rows.append(Row(line, dict(zip(header, cells))))
    return header, rows


def _load(path: Path, data_only: bool) -> Any:
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise InputError(f"{path}: not a readable XLSX file: {exc}") from exc


def _formulas_without_value(path: Path) -> list[str]:
    """Cells holding a formula whose value the file does not store (saved by a program that does not
    calculate, e.g. a script): reading them would silently give an empty cell."""
    from openpyxl.utils import get_column_letter

    formulas, values = _load(path, False), _load(path, True)
    bad = []
    for frow, vrow in zip(formulas.worksheets[0].iter_rows(), values.worksheets[0].iter_rows(values_only=True)):
        for col, (fcell, value) in enumerate(zip(frow, vrow), start=1):
            if getattr(fcell, "data_type", None) == "f" and value is None:
                bad.append(f"{path}:{fcell.row}: cell {get_column_letter(col)}{fcell.row} holds the formula "
                           f"{fcell.value} without a stored value (open the file in Excel or LibreOffice and save it, "
                           "or paste the values)")
    formulas.close()
    values.close()
    return bad


def _xlsx_rows(path: Path) -> tuple[list[str], list[Row]]:
    bad = _formulas_without_value(path)
    if bad:
        raise InputError(f"{path}: nothing imported, {len(bad)} formula cell(s) without a value:\n" + "\n".join(bad))
    wb = _load(path, True)
    sheet = wb.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    try:
        header = [str(h or "").strip().lower() for h in next(it)]
    except StopIteration as exc:
        raise InputError(f"{path}: the workbook's first sheet is empty") from exc
    rows = []
    for line, cells in enumerate(it, start=2):
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        values = {h: _cell_text(c) for h, c in zip(header, cells)}
        rows.append(Row(line, values))
    wb.close()
    return header, rows


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def column_key(name: str) -> str:
    """A column name as compared: case, spaces and the marks ``_ - . /`` ignored ("E-Mail" = "email")."""
    return "".join(ch for ch in name.strip().casefold() if ch not in " _-./\t")


def read_table(path: Path, aliases: dict[str, str] | None = None,
               mapping: dict[str, str] | None = None) -> tuple[list[str], list[Row]]:
    """The header and data rows of a CSV or XLSX file. With ``aliases`` (a :func:`column_key` to a field)
    and ``mapping`` (a column as written to a field, given by the user), columns are renamed to their
    fields; two columns that would give one field, or a mapped column the file lacks, are refused."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    header, rows = _xlsx_rows(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _csv_rows(path)
    if len(rows) > MAX_ROWS:
        raise InputError(f"{path}: more than {MAX_ROWS} rows")
    if aliases is None and not mapping:
        return header, rows
    renamed = _renamed_header(path, header, aliases or {}, mapping or {})
    return ([renamed.get(h, h) for h in header],
            [Row(r.line, {renamed.get(h, h): v for h, v in r.values.items()}) for r in rows])


def _renamed_header(path: Path, header: list[str], aliases: dict[str, str],
                    mapping: dict[str, str]) -> dict[str, str]:
    by_key = {column_key(h): h for h in header}
    renamed: dict[str, str] = {}
    for column, target in mapping.items():
        h = by_key.get(column_key(column))
        if h is None:
            raise InputError(f"{path}:1: --column {column}={target}: the file has no column {column!r} "
                             f"(its columns: {', '.join(header)})")
        renamed[h] = target
    for h in header:
        if h not in renamed and column_key(h) in aliases:
            renamed[h] = aliases[column_key(h)]
    given: dict[str, str] = {}
    for h in header:
        target = renamed.get(h, h)
        if target in given:
            raise InputError(f"{path}:1: the columns {given[target]!r} and {h!r} both give {target} "
                             f"(choose one with --column NAME={target})")
        given[target] = h
    return renamed


def read_rows(path: Path, required: list[str], aliases: dict[str, str] | None = None,
              mapping: dict[str, str] | None = None) -> list[Row]:
    """The data rows of a CSV or XLSX file whose header has at least ``required`` (after renaming, see
    :func:`read_table`)."""
    header, rows = read_table(path, aliases, mapping)
    require_columns(path, header, required)
    return rows


def require_columns(path: Path, header: list[str], required: list[str], hint: str = "") -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:1: the header lacks {', '.join(missing)} (expected {','.join(required)}){hint}")


def parse_decimal(text: str) -> Fraction:
    """An exact number from ``"2.5"``, ``"2,5"`` or ``"3"``; ValueError otherwise."""
    t = text.strip().replace(",", ".")
    if not t or t.count(".") > 1 or not t.replace(".", "", 1).lstrip("+-").isdigit():
        raise ValueError(text)
    return Fraction(t)
