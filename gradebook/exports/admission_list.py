"""The admins' admission list: in the terminal (rich table), as CSV (csv-module quoting), as CSV for German
Excel (semicolons, decimal commas, UTF-8 BOM) and as XLSX (bold frozen header, autofilter, column widths,
number formats). A sheet not decided yet is written as "pending" ("planned" if never authored), never 0.
The percentage is truncated to two decimals everywhere (:func:`gradebook.admission.rule.percent_text`)."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gradebook.admission.lines import standing_lines
from gradebook.admission.rule import Standing, percent_text
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.course.spreadsheet import Number, cell
from gradebook.points.paper import fmt

__all__ = ["percent_text", "header", "write_csv", "write_excel_csv", "write_xlsx", "write_parts_csv", "print_admission"]

BASE = ["student_id", "last_name", "first_name", "email", "matriculation", "group"]
TAIL = ["points", "max_points", "percent", "status", "points_needed", "override_reason"]


def header(standings: list[Standing]) -> list[str]:
    sheets = list(standings[0].sheets) if standings else []
    return BASE + sheets + TAIL


def _sheet_text(s: Standing, sheet: str, number: Any = fmt) -> Any:
    value = s.sheets[sheet]
    if value is not None:
        return _num(number(value))
    cell = s.cells.get(sheet)
    return cell.state if cell is not None and cell.state == "planned" else "pending"


def _num(value: Any) -> Any:
    """A number we formatted (text) or wrote (float): it passes the formula guard as it is."""
    return Number(value) if isinstance(value, str) else value


def _row(s: Standing, number: Any = fmt) -> list[Any]:
    """One student's CSV row; every cell through the formula guard (names, e-mail, reasons are untrusted)."""
    sheets = [_sheet_text(s, sheet, number) for sheet in s.sheets]
    percent = percent_text(s.fraction) if number is fmt else percent_text(s.fraction).replace(".", ",")
    return [cell(v) for v in (s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group, *sheets,
                              _num(number(s.points)), _num(number(s.max_points)), Number(percent), s.status,
                              _num(number(s.points_needed)), s.override_reason)]


def _write(path: Path, rows: list[list[Any]], delimiter: str, encoding: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding=encoding) as fh:
        csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL).writerows(rows)
    tmp.replace(path)
    return path


def write_csv(standings: list[Standing], path: Path) -> Path:
    return _write(path, [header(standings)] + [_row(s) for s in standings], ",", "utf-8")


PARTS_HEADER = ["student_id", "last_name", "first_name", "sheet", "part", "earned", "counted", "max_points", "rule"]


def write_parts_csv(standings: list[Standing], path: Path, semester: tuple[SemesterSheet, ...]) -> Path:
    """One row per student, sheet and part (notebook, paper): earned, counted ("pending" until the sheet is
    decided) and the rule that reduced it: the lines of :func:`gradebook.admission.lines.part_lines`."""
    rows: list[list[Any]] = [PARTS_HEADER]
    for s in standings:
        for line in standing_lines(s, semester):
            rows.append([cell(v) for v in (
                s.student_id, s.last_name, s.first_name, line.sheet, line.part,
                _num(fmt(line.earned)) if line.earned is not None else "",
                _num(fmt(line.counted)) if line.counted is not None else "pending",
                _num(fmt(line.maximum)), line.rule)])
    return _write(path, rows, ",", "utf-8")


def _comma(value: Any) -> str:
    return fmt(value).replace(".", ",")


def write_excel_csv(standings: list[Standing], path: Path) -> Path:
    """The same list for German Excel: opens by double-click with umlauts, columns and numbers intact."""
    return _write(path, [header(standings)] + [_row(s, _comma) for s in standings], ";", "utf-8-sig")


WIDTHS = {"student_id": 12, "last_name": 20, "first_name": 16, "email": 26, "matriculation": 13, "group": 8,
          "status": 13, "override_reason": 30, "percent": 9, "points_needed": 13}


def write_xlsx(standings: list[Standing], path: Path) -> Path:
    """Bold header, frozen below it and right of the names, autofilter over the table, column widths,
    points as numbers ("0.0#"), the truncated percentage as a number formatted "0.00%" (write-only mode:
    styled cells only where a format is needed)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("admission")
    cols = header(standings)
    ws.freeze_panes = "D2"
    for i, name in enumerate(cols, 1):
        ws.column_dimensions[get_column_letter(i)].width = WIDTHS.get(name, max(9, len(name) + 2))
    ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{len(standings) + 1}"
    bold = Font(bold=True)
    ws.append([_cell(ws, name, font=bold) for name in cols])  # our own header: no guard needed
    for s in standings:
        ws.append(_xlsx_row(ws, s))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)
    return path


def _cell(ws: Any, value: Any, **style: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    for key, v in style.items():
        setattr(cell, key, v)
    return cell


def _text(ws: Any, value: Any) -> Any:
    """A text cell that is always a string cell (openpyxl would make "=…" a formula and "#N/A" an error),
    guarded like every CSV cell, without the control characters XLSX cannot hold."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    text = "" if value is None else ILLEGAL_CHARACTERS_RE.sub("", str(cell(value)))
    c = WriteOnlyCell(ws)
    c._value, c.data_type = text, "s"  # set directly: the value setter would infer the type from the text
    return c


def _points(ws: Any, value: Any) -> Any:
    return _cell(ws, value, number_format="0.0#") if isinstance(value, float) else value


def _xlsx_row(ws: Any, s: Standing) -> list[Any]:
    sheets = [_sheet_text(s, sheet, float) for sheet in s.sheets]  # plain numbers: 12 styled cells a row cost 1 s
    return [*(_text(ws, v) for v in (s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group)),
            *(v if isinstance(v, float) else _text(ws, v) for v in sheets),
            _points(ws, float(s.points)), _points(ws, float(s.max_points)),
            _cell(ws, float(s.percent / 100), number_format="0.00%"), _text(ws, s.status),
            _points(ws, float(s.points_needed)), _text(ws, s.override_reason)]


def print_admission(console: Console, standings: list[Standing], cfg: CourseConfig, per_sheet: bool = False,
                    rows: bool = True) -> None:
    """The list in the terminal: one line per student (unless not ``rows``), then the counts per status."""
    counts = Counter(s.status for s in standings)
    summary = ", ".join(f"{counts[k]} {k}" for k in ("admitted", "open", "not_admitted"))
    if not rows:
        console.print(f"{len(standings)} roster students: {summary}", highlight=False)
        return
    threshold = fmt(standings[0].threshold) if standings else "?"
    table = Table(title=f"admission: {len(standings)} roster students, maximum {fmt(cfg.semester_max)}, "
                        f"threshold {threshold} points")
    for name in ("student", "name", "group"):
        table.add_column(name)
    sheets = [sem.id for sem in cfg.semester] if per_sheet else []
    for sheet in sheets:
        table.add_column(sheet, justify="right")
    for name in ("points", "%", "status", "needed", "pending"):
        table.add_column(name, justify="left" if name == "status" else "right")
    for s in standings:
        undecided = sum(1 for v in s.sheets.values() if v is None)
        table.add_row(s.student_id, f"{s.last_name}, {s.first_name}", s.group,
                      *[_sheet_text(s, sheet) for sheet in sheets], fmt(s.points), percent_text(s.fraction),
                      s.status + (" (override)" if s.override_reason else ""),
                      fmt(s.points_needed) if s.points_needed else "", str(undecided) if undecided else "")
    console.print(table)
    console.print(summary, highlight=False)
