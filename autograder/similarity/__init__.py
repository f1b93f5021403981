"""Similarity of answers: which hand-ins of a sheet have answer cells copied from each other (or from an
earlier semester), for the instructors, computed offline on this machine.

:mod:`.answers` (the answer cells of the hand-ins, read with the grader's bounded reader, and the code the
sheet gives), :mod:`.detect` (copydetect's fingerprints and the ranking of pairs: functions on plain data),
:mod:`.report` (the report: one function for the CLI and the web page, an inert HTML file, a rich table) and
:mod:`.seeded` (a seeded corpus of independent and disguised copied answers made from the real sheets: the
tests' and the benchmark's data, with the measure of recall and precision).

May import: copydetect, numpy/scipy, jinja2, rich, :mod:`gradebook` (configuration, manifests, teams) and
:mod:`autograder.grading.pipeline` (the bounded notebook reader). Nothing imports it but the CLI and the web.
"""
