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
    """Header row in bold, panes frozen below it and right of the names, number formats on the
    points and percent columns (styled cells only where a format is needed: write-only mode)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("admission")
    ws.freeze_panes = "D2"
    cols = header(standings)
    bold = Font(bold=True)
    ws.append([_styled(WriteOnlyCell(ws, value=name), font=bold) for name in cols])
    for s in standings:
        row: list[Any] = [s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group]
        row += [None if v is None else float(v) for v in s.sheets.values()]
        row += [_styled(WriteOnlyCell(ws, value=float(s.points)), number_format="0.0#"), float(s.max_points),
                _styled(WriteOnlyCell(ws, value=float(s.fraction)), number_format="0.00%"), s.status,
                float(s.points_needed), s.override_reason]
        ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)
    return path


def _styled(cell: Any, **style: Any) -> Any:
    for key, value in style.items():
        setattr(cell, key, value)
    return cell
