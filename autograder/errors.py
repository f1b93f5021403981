"""The autograder's exception hierarchy; messages name the sheet, student, notebook or cell."""
from __future__ import annotations


class AutograderError(Exception):
    """Base class of every error the autograder reports to a user."""


class SheetError(AutograderError):
    """A sheet (source notebook, release, manifest) is inconsistent or cannot be processed."""


class ValidationFailed(SheetError):
    """`mlph validate` found problems; ``problems`` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


class NbgraderError(AutograderError):
    """nbgrader (generate, release, collect, exchange) reported a failure."""


class SandboxUnavailable(AutograderError):
    """The sandbox cannot be set up on this machine."""
