"""The course configuration: where the course lives, its database, its semester plan and its rule.

The course root is the directory holding ``mlph.toml`` (with ``source/``, ``release/`` and
``nbgrader_config.py`` beside it): ``$MLPH_ROOT`` if set, else the nearest parent of the working
directory that has one, else the repository this package is installed from. ``$MLPH_COURSE_DIR``
overrides the course data directory and ``$MLPH_DB_URL`` the database URL.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from gradebook.errors import ConfigError
from gradebook.course.mail_settings import MailSettings, parse_mail
from gradebook.course.manifest import MANIFEST_NAME, Manifest, load_manifest, paper_settings, parse_due, parse_points

CONFIG_NAME = "mlph.toml"
# A data directory may carry its own configuration (the demo's does): its [course] name and timezone,
# [admission], [intake] and [semester] replace those of mlph.toml for every command on that directory, and
# its database is its own (its [course] db_url, else gradebook.db in it).
DATA_CONFIG_NAME = "course.toml"
OVERLAID = ("admission", "intake", "semester", "paper")


@dataclass(frozen=True)
class SemesterSheet:
    """One sheet of the semester plan; ``manifest`` is None for a sheet not yet authored."""

    id: str
    due: datetime
    max_points: Fraction
    manifest: Manifest | None
    bonus: bool = False  # its points count, its maximum does not
    planned_paper_points: Fraction = Fraction(0)  # for a sheet not yet authored
    counts: str = "last_in_time"  # which notebook hand-in counts: "last_in_time" (a late one only without it) or "latest"

    def part_max(self, part: str) -> Fraction:
        """The maximum of the sheet's "notebook" or "paper" part."""
        if self.manifest is not None:
            return self.manifest.notebook_points if part == "notebook" else self.manifest.paper_points
        return self.max_points - self.planned_paper_points if part == "notebook" else self.planned_paper_points


# Which notebook hand-in counts: the last one in time (a late one only when there is none), or the latest.
COUNTS = ("last_in_time", "latest")


@dataclass(frozen=True)
class AdmissionRule:
    """Admitted with at least ``fraction`` of the semester's maximum (or ``absolute`` points)."""

    fraction: Fraction | None = Fraction(1, 2)
    absolute: Fraction | None = None
    min_per_sheet: Fraction | None = None  # fraction of every (non-bonus) sheet's maximum, if required
    min_per_part: Fraction | None = None  # fraction of the semester's notebook and of its paper points

    def threshold(self, semester_max: Fraction) -> Fraction:
        if self.absolute is not None:
            return self.absolute
        assert self.fraction is not None
        return self.fraction * semester_max


@dataclass(frozen=True)
class CourseConfig:
    root: Path
    name: str
    timezone: str
    data_dir: Path
    db_url: str
    rule: AdmissionRule
    semester: tuple[SemesterSheet, ...]
    # how each of root, data_dir and db_url was found ("MLPH_ROOT", "mlph.toml", "default", …)
    origins: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # [intake] identity: "owner" (an exchange entry must belong to the student it names: every student has
    # an own uid, as on JupyterHub with local accounts) or "shared" (one uid for all: the exchange cannot
    # tell students apart; the web upload is the safe intake there)
    intake_identity: str = "owner"
    # [intake] uploads_per_minute, upload_mb_per_sheet: a student's web uploads (the intake refuses beyond)
    uploads_per_minute: int = 6
    upload_mb_per_sheet: int = 200
    # the course's [late] and [deadlines] (every sheet's defaults: gradebook.course.late_rules)
    late_default: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    group_deadlines: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # [paper] publish: when paper points reach students ("when-graded" or "manual"; a sheet may say its own),
    # and regrade_days: how long after publishing a student may ask for a regrade of a paper task
    publish_paper: str = "when-graded"
    regrade_days: float = 7.0

    def publish_policy(self, sem: SemesterSheet) -> str:
        """The sheet's publishing policy: its manifest's ``publish_paper``, else the course's."""
        own = sem.manifest.publish_paper if sem.manifest is not None else None
        return own or self.publish_paper

    def regrade_window_days(self, sem: SemesterSheet) -> float:
        own = sem.manifest.regrade_days if sem.manifest is not None else None
        return self.regrade_days if own is None else own
    # [mail]: the SMTP relay, the sender and the site's address for links in mails (always mlph.toml's)
    mail: MailSettings = field(default_factory=MailSettings)
    # the manifests :meth:`manifest` read, by path, with the file's bytes; not an argument, so that
    # ``dataclasses.replace`` (another [late] or root) starts with none
    _manifests: dict[str, tuple[bytes, Manifest]] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False)

    @property
    def source_dir(self) -> Path:
        return self.root / "source"

    @property
    def release_dir(self) -> Path:
        return self.root / "release"

    @property
    def exchange_dir(self) -> Path:
        return self.data_dir / "exchange"

    def manifest(self, sheet: str) -> Manifest:
        """The manifest of an authored sheet as its file is now; a clear error for an unknown one. The file is
        read on every call (a web page or a save asks for it on every request) but parsed and checked again
        only when its bytes changed."""
        path = self.source_dir / sheet / MANIFEST_NAME
        try:
            text = path.read_bytes()
        except OSError:
            known = ", ".join(self.authored_sheets()) or "none"
            raise ConfigError(f"unknown sheet {sheet!r}: no {path} (authored sheets: {known})") from None
        kept = self._manifests.get(str(path))
        if kept is not None and kept[0] == text:
            return kept[1]
        manifest = load_manifest(path, self.late_default, self.group_deadlines, text)
        if len(self._manifests) >= 256:  # more than a semester's sheets: spellings of paths, not sheets
            self._manifests.clear()
        self._manifests[str(path)] = (text, manifest)
        return manifest

    def authored_sheets(self) -> list[str]:
        if not self.source_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.source_dir.glob(f"*/{MANIFEST_NAME}"))

    @property
    def semester_max(self) -> Fraction:
        """The semester's maximum: every sheet but the bonus sheets."""
        return sum((s.max_points for s in self.semester if not s.bonus), Fraction(0))


def find_root(start: Path | None = None) -> Path:
    return locate_root(start)[0]


def locate_root(start: Path | None = None) -> tuple[Path, str]:
    """The course root and how it was found."""
    env = os.environ.get("MLPH_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / CONFIG_NAME).is_file():
            raise ConfigError(f"MLPH_ROOT={env}: no {CONFIG_NAME} there")
        return root, "MLPH_ROOT"
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate, f"{CONFIG_NAME} in the working directory or a parent"
    repo = Path(__file__).resolve().parents[1]
    if (repo / CONFIG_NAME).is_file():
        return repo, "the repository the package is installed from"
    raise ConfigError(f"no {CONFIG_NAME} in {here} or its parents; set MLPH_ROOT")


THRESHOLD_FORMS = "a percentage ('50%'), a fraction ('1/2') or points ('120 points')"
_PERCENT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*%$")
_FRACTION = re.compile(r"^(\d+)\s*/\s*(\d+)$")
_POINTS = re.compile(r"^(\d+(?:[.,]\d+)?)\s*points?$", re.IGNORECASE)


def parse_share(text: str, where: str) -> Fraction:
    """A share of a maximum: ``50%`` or ``1/2`` (a bare ``0.5`` is refused: it reads as points elsewhere)."""
    t = text.strip()
    if m := _PERCENT.match(t):
        value = Fraction(m.group(1).replace(",", ".")) / 100
    elif m := _FRACTION.match(t):
        if int(m.group(2)) == 0:
            raise ConfigError(f"{where}: {text!r} divides by zero")
        value = Fraction(int(m.group(1)), int(m.group(2)))
    else:
        raise ConfigError(f"{where}: {text!r} is ambiguous: write a percentage ('50%') or a fraction ('1/2')")
    if not 0 < value <= 1:
        raise ConfigError(f"{where}: {text!r} must lie above 0 and at most 100%")
    return value


def parse_rule(text: str, where: str) -> AdmissionRule:
    """A threshold, in one syntax everywhere (mlph.toml and --preview-threshold): ``50%``, ``1/2`` or
    ``120 points``. A bare number (``0.4``, ``1``) is refused: it could mean either."""
    t = text.strip()
    if m := _POINTS.match(t):
        points = Fraction(m.group(1).replace(",", "."))
        if points <= 0:
            raise ConfigError(f"{where}: a threshold in points must be positive, not {text!r}")
        return AdmissionRule(fraction=None, absolute=points)
    if _PERCENT.match(t) or _FRACTION.match(t):
        return AdmissionRule(fraction=parse_share(t, where))
    raise ConfigError(f"{where}: threshold {text!r} is ambiguous or malformed: write {THRESHOLD_FORMS}")


def _rule(raw: dict[str, Any], where: str) -> AdmissionRule:
    rule = parse_rule(str(raw.get("threshold", "1/2")), f"{where}: [admission] threshold")
    for key in ("min_per_sheet", "min_per_part"):
        if key in raw:
            minimum = parse_share(str(raw[key]), f"{where}: [admission] {key}")
            rule = dataclasses.replace(rule, **{key: minimum})
    return rule


def _semester(root: Path, raw: list[dict[str, Any]], tz: str, where: str,
              late: tuple[dict[str, Any], dict[str, Any]] = ({}, {})) -> tuple[SemesterSheet, ...]:
    sheets: list[SemesterSheet] = []
    for entry in raw:
        sid = entry.get("id")
        if not isinstance(sid, str):
            raise ConfigError(f"{where}: every [[semester.sheet]] needs an 'id'")
        path = root / "source" / sid / MANIFEST_NAME
        bonus = bool(entry.get("bonus", False))
        counts = entry.get("counts", "last_in_time")
        if counts not in COUNTS:
            raise ConfigError(f"{where}: sheet {sid}: counts = {counts!r}; it must be one of {', '.join(COUNTS)}")
        if path.is_file():
            m = load_manifest(path, *late)
            sheets.append(SemesterSheet(sid, m.due, m.max_points, m, bonus, counts=counts))
        elif "planned_points" in entry:
            due = parse_due(entry.get("due"), tz, f"{where}: sheet {sid}")
            pts = parse_points(entry["planned_points"], f"{where}: sheet {sid}")
            paper = parse_points(entry.get("planned_paper_points", 0), f"{where}: sheet {sid}")
            sheets.append(SemesterSheet(sid, due, pts, None, bonus, paper))
        else:
            raise ConfigError(f"{where}: sheet {sid!r} has no {path} and no planned_points")
    if len({s.id for s in sheets}) != len(sheets):
        raise ConfigError(f"{where}: a sheet is listed twice in the semester plan")
    return tuple(sheets)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_config(root: Path | None = None, data_dir: Path | None = None) -> CourseConfig:
    """Read ``mlph.toml`` and apply the environment overrides (``data_dir`` given: that data directory)
    and the data directory's own ``course.toml``, if it has one."""
    origins = {"root": "given"}
    if root is None:
        root, origins["root"] = locate_root()
    root = root.resolve()
    where = str(root / CONFIG_NAME)
    raw = _read_toml(root / CONFIG_NAME)
    mail = parse_mail(raw.get("mail", {}), where)
    course = raw.get("course", {})
    origins["data_dir"] = ("given" if data_dir is not None else "MLPH_COURSE_DIR" if os.environ.get("MLPH_COURSE_DIR")
                           else f"{CONFIG_NAME} [course] data_dir" if course.get("data_dir") else "default (course-data)")
    data_dir = Path(data_dir or os.environ.get("MLPH_COURSE_DIR") or root / course.get("data_dir", "course-data"))
    data_dir = data_dir.resolve()
    if (data_dir / DATA_CONFIG_NAME).is_file():  # the data directory's own plan, rule and intake
        where = str(data_dir / DATA_CONFIG_NAME)
        own = _read_toml(data_dir / DATA_CONFIG_NAME)
        raw = {**raw, **{k: own.get(k, {}) for k in OVERLAID},
               "course": {**{k: v for k, v in course.items() if k != "db_url"},  # never the course's own database
                          **{k: v for k, v in own.get("course", {}).items() if k in ("name", "timezone", "db_url")}}}
        course = raw["course"]
        origins["plan"] = where
    tz = str(course.get("timezone", "Europe/Berlin"))
    late = (_table(raw, "late", where), _table(raw, "deadlines", where))
    db_url = os.environ.get("MLPH_DB_URL") or course.get("db_url") or f"sqlite:///{data_dir / 'gradebook.db'}"
    origins["db_url"] = ("MLPH_DB_URL" if os.environ.get("MLPH_DB_URL") else f"{Path(where).name} [course] db_url"
                         if course.get("db_url") else "default (gradebook.db in the data directory)")
    return CourseConfig(
        root=root,
        name=str(course.get("name", "course")),
        timezone=tz,
        data_dir=data_dir,
        db_url=db_url,
        rule=_rule(raw.get("admission", {}), where),
        semester=_semester(root, raw.get("semester", {}).get("sheet", []), tz, where, late),
        origins=origins,
        intake_identity=_identity(raw.get("intake", {}), where),
        uploads_per_minute=_positive(raw.get("intake", {}), "uploads_per_minute", 6, where),
        upload_mb_per_sheet=_positive(raw.get("intake", {}), "upload_mb_per_sheet", 200, where),
        mail=mail,
        late_default=late[0], group_deadlines=late[1],
        **_paper(raw.get("paper", {}), where),
    )


def _paper(raw: Any, where: str) -> dict[str, Any]:
    """``[paper] publish`` and ``regrade_days`` (defaults: "when-graded", 7 days)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [paper] must be a table")
    publish, days = paper_settings(raw, f"{where}: [paper]", "publish")
    return {"publish_paper": publish or "when-graded", "regrade_days": 7.0 if days is None else days}


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _positive(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: [intake] {key} must be a whole number of at least 1, not {value!r}")
    return value


def _identity(raw: dict[str, Any], where: str) -> str:
    identity = str(raw.get("identity", "owner"))
    if identity not in ("owner", "shared"):
        raise ConfigError(f"{where}: [intake] identity must be \"owner\" or \"shared\", not {identity!r}")
    return identity
