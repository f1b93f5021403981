"""The gradebook's exception hierarchy: every error a front end shows to a user is one of these."""
from __future__ import annotations


class GradebookError(Exception):
    """Base class. The message names the file, row, sheet or student concerned."""


class ConfigError(GradebookError):
    """The course configuration (mlph.toml) or a sheet manifest is wrong."""


class ManifestError(ConfigError):
    """A sheet manifest (source/sheetNN/sheet.toml) is malformed or disagrees with its notebook."""


class InputError(GradebookError):
    """A user-supplied file (roster, points CSV/XLSX) is malformed; nothing of it was written."""


class UnknownStudentError(InputError):
    """A student id that the gradebook does not know."""


class ConflictError(GradebookError):
    """A concurrent change was detected; the write was not applied."""
