"""The autograder: a hand-in walks through it in one direction.

    intake    every way a hand-in arrives (web upload, nbgrader's exchange, LMS zip) -> submitted/
    grading   a hand-in in, a result out: sanitise, execute in the sandbox, score outside the kernel,
              feedback, store (through the gradebook)
    sandbox   bubblewrap, cgroups, rlimits; kernels forked from a zygote
    sheets    `mlph validate`: a sheet is sound before it is released
    checks    the check helper copied into every release (runs inside the student's kernel)
    demo      `mlph demo`: the whole pipeline on a simulated class
    similarity `mlph similarity`: pairs of hand-ins with unusually similar answer cells (copydetect), for
              the instructors; reads submitted/ with grading's bounded reader

Arrows: demo -> grading -> sandbox; grading -> intake (its records); sheets -> grading; similarity -> grading. The autograder
imports :mod:`gradebook` (points, manifests, configuration), never :mod:`web`; :mod:`autograder.cli` is the
root `mlph` command, which attaches the gradebook's and the web's commands. Importing the autograder imports
:mod:`gradebook` first, whose set-up keeps nbformat's import cheap (:mod:`gradebook.nbformat_import`)."""
import gradebook  # noqa: F401
