"""JSON that a student made, parsed only after a flat scan has bounded it: depth, number length, value count.

Python's JSON decoder (and nbformat, jsonschema and every recursive walk after it) recurses once per level of
nesting and converts integer literals with ``int()``: a few hundred kB of ``[[[[…`` raise ``RecursionError``, a
5000-digit literal raises ``ValueError`` (the int-string conversion limit), and a file of ``[],[],…`` costs far
more memory than its size. :func:`scan` looks at the bytes without recursion, with C-speed regular expressions
(strings are taken out first, with possessive quantifiers, so nothing backtracks) and refuses, with a fixed
reason naming the file, anything deeper than :data:`MAX_DEPTH`, any number longer than
:data:`MAX_NUMBER_CHARS` characters, or more than :data:`MAX_VALUES` values. :func:`loads` is the scan, then
``json.loads``; everything it raises is an :class:`~autograder.intake.safe.IntakeRefused`.
"""
from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from autograder.intake.safe import IntakeRefused

MAX_DEPTH = 64  # a notebook is 5-8 levels deep; widget state and JSON outputs rarely pass 20
MAX_NUMBER_CHARS = 100  # execution counts, sizes, versions; a float's repr is at most 24 characters
MAX_VALUES = 2_000_000  # JSON values (containers, items, keys); about 10 bytes each in a 20 MB notebook

_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_LONG_NUMBER = re.compile(rb"[-+.0-9eE]{%d,}" % (MAX_NUMBER_CHARS + 1))
_BRACKETS_ONLY = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _b in b"[{":
    _STEP[_b] = 1
for _b in b"]}":
    _STEP[_b] = -1


def scan(data: bytes, name: str) -> str:
    """``data`` as text when its JSON structure is within the bounds; else IntakeRefused with a fixed reason.

    Conservative on broken JSON (an unterminated string makes the rest count as structure), exact on valid
    JSON: the decoder recurses only on brackets this scan has counted."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeRefused(f"{name} is not UTF-8 text (byte {exc.start})") from None
    bare = _STRING.sub(b'""', data)
    if _LONG_NUMBER.search(bare):
        raise IntakeRefused(f"{name} holds a number longer than {MAX_NUMBER_CHARS} characters "
                            "(numbers are written as text in a notebook's outputs)")
    structure = bare.translate(None, _BRACKETS_ONLY)
    values = len(structure) // 2 + bare.count(b",") + bare.count(b":") + 1
    if values > MAX_VALUES:
        raise IntakeRefused(f"{name} holds more than {MAX_VALUES:,} JSON values (clear the outputs and save again)")
    if structure and max(accumulate(map(_STEP.__getitem__, structure))) > MAX_DEPTH:
        raise IntakeRefused(f"{name} is nested deeper than {MAX_DEPTH} levels (no notebook Jupyter saves is)")
    return text


def loads(data: bytes, name: str) -> Any:
    """The JSON value in ``data`` (bounded first by :func:`scan`), or IntakeRefused saying where it breaks."""
    text = scan(data, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntakeRefused(f"{name} is not a notebook: invalid JSON at line {exc.lineno}, column {exc.colno} "
                            f"({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # not expected after the scan; still this file's fault
        raise IntakeRefused(f"{name} cannot be parsed as JSON ({type(exc).__name__})") from None
