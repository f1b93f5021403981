"""What leaves the gradebook for people: the admission list (terminal, CSV, Excel CSV, XLSX), the
instructors' HTML report, and the admins' lists (roster, groups, staff, overrides, extensions, audit log,
hand-ins per sheet).

May import: every room below it (:mod:`gradebook.admission.rule` down to :mod:`gradebook.store`)."""
