"""Points and the hand-ins they come from: the late decision per hand-in (:mod:`.handins`), autograded
results as stored (:mod:`.autograde_store`), pen-and-paper points, rubric gradings and comments
(:mod:`.paper`; what one save reads and locks, in one statement: :mod:`.cell_lock`), rubric items by
reference and their edits (:mod:`.rubric`, :mod:`.rubric_edit`), the tutors' grid (:mod:`.grid`; read in one statement: :mod:`.grid_read`; under
pseudonyms on an anonymous sheet: :mod:`.anonymous_grid`), grading one task across the group
(:mod:`.by_task`), the pages of a paper hand-in as images and which task they answer (:mod:`.page_images`,
:mod:`.page_render`, :mod:`.page_tags`), publishing paper points per sheet (:mod:`.publishing`; kept per process and
brought up to date by what changed: :mod:`.current_publications`), changes by hand (:mod:`.manual`: score overrides, extensions), and the
grading queue with the graders' heartbeats (:mod:`.grading_queue`). Every write is audited and goes through
:func:`gradebook.store.db.atomic`.

May import: :mod:`gradebook.people`, :mod:`gradebook.course`, :mod:`gradebook.store`, :mod:`gradebook.errors`."""
