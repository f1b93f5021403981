"""People: the roster of students, tutorial groups and their tutors, teams per sheet, and the web
application's accounts.

May import: :mod:`gradebook.course`, :mod:`gradebook.store`, :mod:`gradebook.errors`."""
