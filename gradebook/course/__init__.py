"""The course: its configuration (``mlph.toml``: where it lives, its database, the semester plan, the rule),
the sheet manifests (``source/sheetNN/sheet.toml``), the state of each sheet (released, closed, decided,
graded anonymously: :mod:`.anonymity`),
"where am I" (:mod:`.info`), and reading the tables (CSV/XLSX) the course team hands us.

May import: :mod:`gradebook.store`, :mod:`gradebook.errors`."""
