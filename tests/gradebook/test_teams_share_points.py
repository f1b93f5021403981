"""Teams: a team's autograded and paper points credit every member; one team per sheet per student."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.cli import main
from gb_helpers import autograded
from gradebook.admission.rule import compute_standings
from gradebook.store.db import open_gradebook
from gradebook.errors import InputError
from gradebook.points.paper import import_points
from gradebook.people.teams import import_teams

AFTER = datetime(2027, 3, 1, tzinfo=timezone.utc)


def totals(cfg):
    return {s.student_id: s.sheets for s in compute_standings(open_gradebook(cfg.db_url), cfg, AFTER)}


def test_team_credit_equals_member_credit(gradebook_course, tmp_path):
    cfg = gradebook_course
    f = tmp_path / "teams.csv"
    f.write_text("student_id,team\nab1,T1\ncd2,T1\nef3,T2\n")
    result = CliRunner().invoke(main, ["teams", "import", "tiny01", str(f)])
    assert result.exit_code == 0 and "2 team(s) for tiny01" in result.output, result.output
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))  # cd2 hands in for the team
    p = tmp_path / "p.csv"
    p.write_text('student_id,task,points\nab1,proof,"2,5"\n')  # the tutor enters it for ab1
    import_points(open_gradebook(cfg.db_url), cfg.manifest("tiny01"), p, "tutor")
    got = totals(cfg)
    assert got["ab1"]["tiny01"] == got["cd2"]["tiny01"] == Fraction(11, 2)
    assert got["ef3"]["tiny01"] == 0
    assert got["ab1"]["tiny02"] == 0  # teams are per sheet


def test_a_student_in_two_teams_of_a_sheet_is_refused(gradebook_course, tmp_path):
    f = tmp_path / "teams.csv"
    f.write_text("student_id,team\nab1,T1\ncd2,T1\nab1,T2\nzz9,T3\n")
    with pytest.raises(InputError) as err:
        import_teams(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"), f, "admin")
    assert f"{f}:4: student 'ab1' is already in team 'T1' of tiny01 (row 2)" in str(err.value)
    assert f"{f}:5: unknown student 'zz9' (not in the roster)" in str(err.value)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(3, 2), Fraction(3)]), min_size=3, max_size=3),
       st.sampled_from(["ab1", "cd2", "ef3"]))
def test_property_every_member_gets_the_team_total(gradebook_course, tmp_path_factory, paper, submitter):
    cfg = gradebook_course
    d = tmp_path_factory.mktemp("t")
    (d / "t.csv").write_text("student_id,team\nab1,T\ncd2,T\nef3,T\n")
    import_teams(open_gradebook(cfg.db_url), cfg.manifest("tiny02"), d / "t.csv", "admin")
    autograded(cfg, "tiny02", submitter, Fraction(1), Fraction(0))
    (d / "p.csv").write_text("student_id,task,points\n" + "".join(
        f"{s},proof,{float(p)}\n" for s, p in zip(["ab1", "cd2", "ef3"], paper)))
    import_points(open_gradebook(cfg.db_url), cfg.manifest("tiny02"), d / "p.csv", "tutor")
    got = totals(cfg)
    assert len({got[s]["tiny02"] for s in ("ab1", "cd2", "ef3")}) == 1
    assert got["ab1"]["tiny02"] >= 1 + max(paper)
