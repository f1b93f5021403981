"""Intake: every way a hand-in arrives becomes ``submitted/<student>/<sheet>/`` through one set of checks.

:mod:`.safe` (reading what a student made: no links, no special files, bounded, clean names),
:mod:`.store` (what a sheet accepts, and the atomic writers), and one module per way in:
:mod:`.exchange` (nbgrader's exchange, with the entry's owner and the server's time of receipt),
:mod:`.upload` (the web application) and :mod:`.zipimport` (an LMS's bulk download). Each hand-in's fate
(accepted, invalid, held, refused) is a ``handin`` row in the gradebook; nothing of the grader reads
student files any other way.
"""
