"""The bottom room: the database. The engine and its one transaction helper (:mod:`.db`), our tables
(:mod:`.models`), nbgrader's tables as Core objects (:mod:`.nbgrader_tables`) and their in-process creation
(:mod:`.nbgrader_schema`), and the Alembic migrations.

May import: :mod:`gradebook.errors` only. Everything else in the gradebook imports from here."""
