"""The admission rule: per student, points over the decided sheets, the semester maximum and a status
(:mod:`.rule`, exact arithmetic on ``Fraction``) and the rows it reads (:mod:`.rule_rows`: a table at a time;
:mod:`.student_read`: a few students' rows, and what their pages show, in one statement); admission overrides
(:mod:`.overrides`); one student's standing as ``mlph status`` and the dashboard show it (:mod:`.status`); the
standings a process keeps per version of the gradebook for the web's pages (:mod:`.current`).

May import: :mod:`gradebook.points`, :mod:`gradebook.people`, :mod:`gradebook.course`,
:mod:`gradebook.store`, :mod:`gradebook.errors`."""
