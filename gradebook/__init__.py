"""The gradebook: every point of the course and what follows from them, in one database.

Rooms, each a package whose docstring says what it holds; arrows point down only (checked by
``tests/test_layout_arrows_point_down.py``):

    cli        the gradebook's `mlph` commands (thin)
    exports    admission list (CSV, Excel CSV, XLSX), report, lists
    admission  the rule (exact), overrides, one student's standing
    points     hand-ins and late decisions, autograded results, paper points, the tutors' grid
    people     roster, groups and tutors, teams, web accounts
    course     mlph.toml, sheet manifests, sheet states, reading uploaded tables
    store      engine, transaction helper, our models, nbgrader's tables, migrations

:mod:`gradebook.errors` (the exception hierarchy) sits below all of them. :mod:`web` and :mod:`autograder`
import the gradebook, never the other way round. See docs/architecture.md."""
from gradebook import nbformat_import  # noqa: F401  (must run before anything imports nbformat)
