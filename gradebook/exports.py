"""The admins' admission list as CSV (csv-module quoting) and XLSX (header, frozen panes, formats)."""
from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path
from typing import Any

from .admission import Standing
from .paper import fmt

BASE = ["student_id", "last_name", "first_name", "email", "matriculation", "group"]
TAIL = ["points", "max_points", "percent", "status", "points_needed", "override_reason"]


def percent_text(fraction: Fraction) -> str:
    """Percent with two decimals, truncated (never shows 50.00 for 49.999...)."""
    hundredths = (fraction * 10000).__floor__()
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def header(standings: list[Standing]) -> list[str]:
    sheets = list(standings[0].sheets) if standings else []
    return BASE + sheets + TAIL


def _row(s: Standing) -> list[Any]:
    sheets = ["" if v is None else fmt(v) for v in s.sheets.values()]
    return [s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group, *sheets,
            fmt(s.points), fmt(s.max_points), percent_text(s.fraction), s.status, fmt(s.points_needed),
            s.override_reason]


def write_csv(standings: list[Standing], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
        w.writerow(header(standings))
        w.writerows(_row(s) for s in standings)
    tmp.replace(path)
    return path


def write_xlsx(standings: list[Standing], path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("admission")
    ws.freeze_panes = "D2"
    cols = header(standings)
    bold = Font(bold=True)
    head = []
    for name in cols:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = bold
        head.append(cell)
    ws.append(head)
    n_sheets = len(cols) - len(BASE) - len(TAIL)
    for s in standings:
        row: list[Any] = [s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group]
        row += [None if v is None else float(v) for v in s.sheets.values()]
        row += [float(s.points), float(s.max_points), float(s.fraction), s.status, float(s.points_needed),
                s.override_reason]
        cells = []
        for i, value in enumerate(row):
            cell = WriteOnlyCell(ws, value=value)
            if len(BASE) <= i < len(BASE) + n_sheets + 2 or i == len(cols) - 2:
                cell.number_format = "0.0#"
            elif i == len(BASE) + n_sheets + 2:
                cell.number_format = "0.00%"
            cells.append(cell)
        ws.append(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)
    return path
