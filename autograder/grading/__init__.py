"""The grading pipeline: a hand-in in, a result out.

:mod:`.pipeline` (discover, make_job, finish: functions on plain data), :mod:`.run` (the coordinator:
workers, progress, storage), :mod:`.worker` and :mod:`.execute` (one notebook in one kernel),
:mod:`.assemble` and :mod:`.harden` (what runs), :mod:`.scoring` (the verdict, outside the kernel),
:mod:`.reference` (the solution's records) and :mod:`.feedback` (the student's page).
"""
