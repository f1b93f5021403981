"""The tutor grid's rows and student panels as HTML, built in Python: the one loop of a page whose size grows
with the group (students × tasks). ``tutor_grid.html`` places them; everything around them stays a template.

Jinja's machinery per value (attribute lookup, escaping into a ``Markup``, filter and method calls through the
context) made rendering the largest share of a grid's cost (about 3 ms of 7 ms for 30 students × 3 tasks).
Here each value is escaped once with markupsafe's :func:`escape` (what autoescape does) and the rest is string
formatting. Every value that reaches the HTML goes through :func:`_e` or is a number or a ``points`` text.
May import the gradebook's plain data and :mod:`web.templating`'s filters.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from markupsafe import Markup, escape

from gradebook.course.manifest import Task
from gradebook.points.grid import CellState, Grid, GridStudent
from gradebook.points.page_images import TaskPages
from gradebook.points.rubric import Item

from web.templating import points_text

Local = Callable[[datetime | str | None], str]


def _e(value: object) -> str:
    return str(escape(value))


def grid_rows(g: Grid, anonymous: bool, local: Local) -> Markup:
    """The table's body rows: a student's name, notebook points and one input per paper task."""
    tasks = [(t, _e(t.id), points_text(t.points)) for t in g.tasks]
    out: list[str] = []
    for row, s in enumerate(g.students):
        name, sid = _e(s.name), _e(s.id)
        out.append(f'  <tr data-student="{sid}">\n    <th scope="row" class="who">\n'
                   f'      <button type="button" class="pick link" tabindex="-1">{name}</button>\n'
                   f'      <span class="sid">{_who(s, anonymous)}</span>\n{_pdf_flag(s, local)}    </th>\n'
                   f'    <td class="num auto">{_notebook_cell(s)}</td>\n')
        for col, (t, tid, most) in enumerate(tasks):
            out.append(_input_cell(g.cells[(s.id, t.id)], g.regrades.get((s.id, t.id)), name, sid, row, col, tid,
                                   most))
        out.append(f'    <td class="num sum" data-sum-for="{sid}"></td>\n  </tr>\n')
    return Markup("".join(out))


def _who(s: GridStudent, anonymous: bool) -> str:
    text = "" if anonymous else _e(s.id)
    if s.team:
        text += f' · {"" if anonymous else "team "}{_e(s.team)}'
    return text


def _pdf_flag(s: GridStudent, local: Local) -> str:
    if s.pdf is None:
        return '<span class="pdf-flag none" title="no PDF handed in">no PDF</span>'
    return (f'<a class="pdf-flag" href="/handins/{s.pdf.id}/pdf" target="_blank" rel="noopener" tabindex="-1" '
            f'title="PDF handed in {_e(local(s.pdf.received_at))}">PDF</a>')


def _notebook_cell(s: GridStudent) -> str:
    if s.autograded is not None:
        return points_text(s.autograded)
    if s.autograde_status:
        status = _e(s.autograde_status)
        return f'<span class="st-{status}">{status}</span>'
    return '<span class="muted">–</span>'


def _input_cell(c: CellState, rid: int | None, name: str, sid: str, row: int, col: int, tid: str, most: str) -> str:
    saved = "" if c.points is None else points_text(c.points)
    team = ""
    if c.team_points is not None:
        theirs = points_text(c.team_points)
        team = f'      placeholder="{theirs}" title="entered for a teammate: {theirs}" data-team="1"\n'
    flag = (f'<span class="regrade-flag" title="a regrade request on {tid} is open (#{rid})">regrade pending</span>'
            if rid else "")
    opened = f'<td class="cell regrade" data-regrade="{rid}">' if rid else '<td class="cell">'
    return (f'    {opened}'
            f'<input class="pts" type="text" inputmode="decimal" autocomplete="off" spellcheck="false" size="4"\n'
            f'      aria-label="{name}, {tid} (0 to {most})"\n'
            f'      data-row="{row}" data-col="{col}" data-student="{sid}" data-task="{tid}"\n'
            f'      data-max="{most}" data-version="{c.version}"\n'
            f'      data-saved="{saved}"\n{team}'
            f'      value="{saved}">{flag}</td>\n')


def grid_panels(g: Grid, pages: Mapping[str, Mapping[str, TaskPages]], anonymous: bool, local: Local) -> Markup:
    """The side panel's section per student (the first shown): PDF and notebook facts, and per task the
    regrade note, the pages, the rubric, the comment and the model solution."""
    heads = {t.id: (_e(t.id), _e(t.title), points_text(t.points)) for t in g.tasks}
    out: list[str] = []
    for k, s in enumerate(g.students):
        sid = _e(s.id)
        shown_id = "" if anonymous else f' <span class="muted small">{sid}</span>'
        out.append(f'  <section class="student-panel" data-student="{sid}"{"" if k == 0 else " hidden"}>\n'
                   f'    <h2>{_e(s.name)}{shown_id}</h2>\n')
        if s.team:
            out.append(f'<p class="small muted">Team {_e(s.team)}: the points entered for any member count for the '
                       f'whole team.</p>')
        out.append(f'    <ul class="facts">\n      <li>{_pdf_fact(s, local)}</li>\n'
                   f'      <li>Notebook: {_notebook_fact(g, s)}'
                   + ("" if anonymous else f' · <a href="/students/{sid}/sheets/{_e(g.sheet)}" target="_blank" '
                                           f'rel="noopener">feedback and hand-ins</a>')
                   + '</li>\n    </ul>\n')
        mine = pages.get(s.id, {})
        for t in g.tasks:
            out.append(_task_box(g, t, heads[t.id], g.cells[(s.id, t.id)], g.regrades.get((s.id, t.id)),
                                 mine.get(t.id) or mine.get(""), sid))
        out.append("  </section>\n")
    return Markup("".join(out))


def _pdf_fact(s: GridStudent, local: Local) -> str:
    if s.pdf is None:
        return '<span class="muted">No PDF handed in.</span>'
    p = s.pdf
    by = f" by {_e(p.student_id)}" if p.student_id != s.id else ""
    return (f'<a href="/handins/{p.id}/pdf" target="_blank" rel="noopener">Open the PDF</a> · '
            f'<a href="/handins/{p.id}/pages" target="_blank" rel="noopener">its pages by task</a> '
            f'<span class="muted small">{_e(p.original_name or "")}, handed in {_e(local(p.received_at))}{by}</span>')


def _notebook_fact(g: Grid, s: GridStudent) -> str:
    if s.autograded is not None:
        return f"<strong>{points_text(s.autograded)}</strong> / {points_text(g.notebook_max)} autograded"
    if s.autograde_status:
        status = _e(s.autograde_status)
        reason = f' <span class="small">{_e(s.autograde_reason)}</span>' if s.autograde_reason else ""
        return f'<span class="st-{status}">{status}</span>{reason}'
    return f'<span class="muted">not graded{" yet" if s.notebook else ": nothing handed in"}</span>'


def _task_box(g: Grid, t: Task, head: tuple[str, str, str], c: CellState, rid: int | None, tp: TaskPages | None,
              sid: str) -> str:
    tid, title, most = head
    out = [f'    <div class="task-box" data-task="{tid}">\n'
           f'      <h3>{tid} <span class="muted small">{title} · max {most}</span></h3>\n']
    if rid:
        out.append(f'<p class="small regrade-note"><span class="regrade-flag">regrade pending</span> A regrade request '
                   f'on {tid} is open: <a href="/regrades/{rid}" target="_blank" rel="noopener">request #{rid}</a> '
                   f'(answered by another tutor than the one who graded it, or an admin).</p>')
    if tp:
        out.append(_thumbs(tid, tp))
    items = g.rubrics.get(t.id)
    if items:
        out.append(_rubric(items, c, sid, tid))
    out.append(f'      <label class="block small">Comment for the student\n'
               f'        <textarea class="comment" rows="2" maxlength="4000" data-student="{sid}" data-task="{tid}" '
               f'data-version="{c.comment_version}">{_e(c.comment)}</textarea></label>\n')
    if t.solution:
        out.append(f'<details class="solution small"><summary>Model solution (tutors only)</summary>'
                   f'<pre class="message">{_e(t.solution)}</pre></details>')
    out.append("    </div>\n")
    return "".join(out)


def _thumbs(tid: str, tp: TaskPages) -> str:
    shown = "the pages tagged for it" if tp.tagged else "not tagged, every page"
    images = "".join(f'<a href="/handins/{img.handin_id}/pages#p{img.number}" target="_blank" rel="noopener" '
                     f'tabindex="-1"><img src="{_e(img.url)}" alt="page {img.number}" width="88" '
                     f'height="{int(88 * img.height / img.width)}" loading="lazy"></a>' for img in tp.images)
    which = (f'pages {", ".join(str(img.number) for img in tp.images)}' if tp.tagged
             else f"not tagged: all {len(tp.images)} pages")
    return (f'<div class="thumbs" aria-label="{tid}: {shown}">\n        {images}\n'
            f'        <span class="small muted">{which}</span></div>')


def _rubric(items: Sequence[Item], c: CellState, sid: str, tid: str) -> str:
    adjustment = f"; adjustment {points_text(c.adjustment)}" if c.adjustment else ""
    out = [f'      <fieldset class="rubric"><legend class="small muted">Rubric: tick what the solution does (the '
           f'points follow){adjustment}</legend>\n']
    ticks = c.ticks or ()
    for item in items:
        key = _e(item.key)
        note = f' <span class="small muted">· {_e(item.note)}</span>' if item.note else ""
        out.append(f'        <label><input type="checkbox" class="tick" data-student="{sid}" data-task="{tid}" '
                   f'value="{key}"{" checked" if item.key in ticks else ""}>\n'
                   f'          {_e(item.text)} <span class="muted">({points_text(item.points)})</span>{note}</label>\n')
    out.append("      </fieldset>\n")
    return "".join(out)
