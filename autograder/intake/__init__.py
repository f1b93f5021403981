"""Intake: every way a hand-in arrives becomes ``submitted/<student>/<sheet>/`` through one set of checks.

:mod:`.safe` (reading what a student made: no links, no special files, bounded, clean names),
:mod:`.boundedjson` (JSON bounded in depth, number length and value count before any parser sees it),
:mod:`.store` (what a sheet accepts, and the atomic writers, which write the time of receipt with the files),
and one module per way in:
:mod:`.exchange` (nbgrader's exchange, with the entry's owner and the server's time of receipt),
:mod:`.upload` (the web application) and :mod:`.zipimport` (an LMS's bulk download). Each hand-in's fate
(accepted, invalid, held, refused) is a ``handin`` row in the gradebook, every time in it UTC; any failure
while one hand-in is read is that hand-in's record, never a stopped batch. Nothing of the grader reads student
files any other way.
"""
