"""Ranking the pairs of answers to each answer cell of a sheet, with copydetect's fingerprints.

Each answer is filtered the way copydetect filters code (:func:`filter_python`: the student's names become
``V``, strings ``S``, comments and layout vanish; library names after a dot stay) and fingerprinted as the
set of hashes of its k-grams (copydetect's ``hashed_kgrams``, window 1). The given code's k-grams (release
notebook: stubs, setup, visible tests) are removed from every answer: they never count.

In a cell of ``n`` answers, a fingerprint that ``df`` of them have is shared with a given other answer by
chance with probability ``(df - 1) / (n - 1)``; summed over an answer's fingerprints that is what it shares
with anyone by chance. A pair's **excess** is what it shares beyond that; its **score** in the cell is the
excess over what the smaller answer has beyond chance (so added dead code or comments do not hide a copy,
and a short task that everyone writes alike has nothing beyond chance: below ``min_own`` it is not compared).
The **sheet** score adds excess and room over all the sheet's cells: a copied notebook agrees everywhere,
two independent answers agree by chance in a cell or two. A pair is listed in a cell when both reach their
thresholds (:class:`Settings`). Pairs within one author (a team) and between two references (earlier
semesters) are not formed. The matching regions shown are copydetect's (:func:`copydetect.compare_files`)
over the fingerprints that neither the given code nor most answers (``common_share``) have.
"""
from __future__ import annotations

import builtins
import copy
import io
import keyword
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import get_document_fingerprints, hashed_kgrams
from scipy import sparse

from autograder.similarity.answers import Answer


@dataclass(frozen=True)
class Settings:
    noise: int = 10              # k: the shortest match, in filtered characters (a name counts as one)
    threshold: float = 0.6       # over the sheet: shared beyond chance / what the smaller answers have beyond it
    cell_threshold: float = 0.3  # in the cell, the same measure
    min_own: float = 15          # an answer needs this many fingerprints beyond chance to be compared at all
    min_shared: float = 5        # fingerprints a listed pair shares beyond chance in the cell
    common_share: float = 0.2    # matches in more answers than this share are not marked (what most write)
    common_min: int = 4
    max_pairs: int = 40          # listed per answer cell


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool


@dataclass(frozen=True)
class Pair:
    a: Answer
    b: Answer
    score: float     # in this cell
    sheet: float     # over the sheet (the same two authors' other answers too)
    shared: int      # fingerprints in common
    segments_a: tuple[Segment, ...] = ()
    segments_b: tuple[Segment, ...] = ()

    @property
    def reference(self) -> bool:
        return bool(self.a.origin or self.b.origin)


_KEPT = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}


def filter_python(code: str) -> tuple[str, np.ndarray, np.ndarray]:
    """The answer as copydetect's filter sees code (its :func:`~copydetect.utils.filter_code`): the student's
    own names become ``V`` (a defined function ``F``, a class ``O``), strings ``S``, comments and layout
    vanish; keywords, builtins, operators and numbers stay. A name after a dot (``np.delete``, ``x.mean``)
    stays too: it is the library's name, not the student's. Python's own tokenizer does the lexing (eight
    times faster than pygments); code it cannot finish tokenizing counts up to where it stopped.

    Returns the filtered text and, for each of its characters, where it starts and ends in ``code``."""
    line_start = [0]
    for line in code.splitlines(keepends=True):
        line_start.append(line_start[-1] + len(line))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIPPED:
                continue
            if tok.type == tokenize.NAME:
                piece = tok.string if previous == "." or tok.string in _KEPT else \
                    {"def": "F", "class": "O"}.get(previous, "V")
            elif tok.type == tokenize.STRING:
                piece = "S"
            else:
                piece = tok.string
            previous = tok.string
            out.append(piece)
            starts.append(line_start[tok.start[0] - 1] + tok.start[1])
            ends.append(line_start[tok.end[0] - 1] + tok.end[1])
    except (tokenize.TokenError, SyntaxError):
        pass
    lengths = [len(piece) for piece in out]
    return ("".join(out), np.repeat(np.array(starts, dtype=np.int64), lengths),
            np.repeat(np.array(ends, dtype=np.int64), lengths))


def fingerprint(code: str, settings: Settings) -> CodeFingerprint:
    """copydetect's fingerprint of one answer, filtered by :func:`filter_python`: the hashes of every k-gram
    (window 1). Where each hash occurs is worked out only for the pairs shown (:func:`_located`)."""
    fp = CodeFingerprint.__new__(CodeFingerprint)
    fp.filename, fp.raw_code, fp.k = "answer.py", code, settings.noise
    fp.filtered_code, fp.raw_start, fp.raw_end = filter_python(code)
    fp.offsets = np.array([])  # compare_files then gives slices of the filtered text; _segments maps them
    fp.hashes = set(hashed_kgrams(fp.filtered_code, settings.noise).tolist())
    fp.hash_idx = {}
    fp.token_coverage = max(1, len(fp.filtered_code))  # copydetect's ratios are not used here
    return fp


def _located(fp: CodeFingerprint, drop: set[int]) -> CodeFingerprint:
    """``fp`` without the hashes in ``drop``, with the positions of the others (for copydetect's compare_files)."""
    kept = copy.copy(fp)
    hashes, idx = get_document_fingerprints(fp.filtered_code, fp.k, 1)
    kept.hashes = {h for h in hashes if h not in drop}
    kept.hash_idx = {h: i for h, i in idx.items() if h not in drop}
    return kept


def given_hashes(codes: Sequence[str], settings: Settings) -> set[int]:
    """Every k-gram hash of the given code (no winnowing: any piece of it that an answer keeps is removed)."""
    found: set[int] = set()
    for code in codes:
        filtered = filter_python(code)[0]
        found.update(int(h) for h in hashed_kgrams(filtered, settings.noise))
    return found


def without(fp: CodeFingerprint, drop: set[int]) -> CodeFingerprint:
    """``fp`` without the fingerprints in ``drop`` (copydetect's own way of removing boilerplate)."""
    kept = copy.copy(fp)
    kept.hashes = fp.hashes - drop
    return kept


def fingerprint_many(codes: Sequence[str], settings: Settings) -> dict[str, CodeFingerprint]:
    """code → its fingerprint, each distinct code once (one process: a pool's pickling costs more than it saves)."""
    return {c: fingerprint(c, settings) for c in sorted(set(codes))}


def _segments(fp: CodeFingerprint, slices: np.ndarray) -> tuple[Segment, ...]:
    """The answer's text cut into marked (matching) and unmarked pieces; ``slices`` index the filtered text."""
    code = fp.raw_code
    spans: list[list[int]] = []
    pairs = zip(slices[0].tolist(), slices[1].tolist()) if len(slices) and len(slices[0]) else []
    for start, end in sorted(pairs):
        if end <= start or start >= len(fp.raw_start):
            continue
        a, b = int(fp.raw_start[start]), int(fp.raw_end[min(end, len(fp.raw_end)) - 1])
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    out: list[Segment] = []
    pos = 0
    for a, b in spans:
        if a > pos:
            out.append(Segment(code[pos:a], False))
        out.append(Segment(code[a:b], True))
        pos = b
    if pos < len(code):
        out.append(Segment(code[pos:], False))
    return tuple(out)


@dataclass
class CellScores:
    """One answer cell: its answers (one per author) and, for each pair, what they share beyond chance."""
    answers: list[Answer]
    prints: list[CodeFingerprint]
    score: np.ndarray      # shared beyond chance / what the smaller answer has beyond chance (0 if too small)
    excess: np.ndarray     # fingerprints shared beyond chance (the larger of the two directions)
    room: np.ndarray       # fingerprints beyond chance of the smaller answer (0 if below ``min_own``)
    shared: np.ndarray     # fingerprints shared
    common: set[int]       # found in more than ``common_share`` of the answers: not marked


def score_cell(answers: Sequence[Answer], prints: Sequence[CodeFingerprint], settings: Settings) -> CellScores:
    """Every pair's similarity in one answer cell (fingerprints ``prints``, given code already removed).

    A fingerprint found in ``df`` of ``n`` answers is shared with a given other answer by chance with
    probability ``(df - 1) / (n - 1)``; what two answers share beyond that sum is their evidence."""
    n = len(answers)
    df = Counter(h for fp in prints for h in fp.hashes)
    columns = {h: j for j, h in enumerate(df)}
    rows = [i for i, fp in enumerate(prints) for _ in fp.hashes]
    cols = [columns[h] for fp in prints for h in fp.hashes]
    present = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, max(len(columns), 1)))
    shared = (present @ present.T).toarray()
    size = np.asarray(present.sum(axis=1)).ravel()
    chance = np.zeros(max(len(columns), 1))
    chance[:len(columns)] = [(df[h] - 1) / max(n - 1, 1) for h in columns]
    own = np.maximum(size - present @ chance, 0.0)
    excess = shared - (present @ chance)[:, None]
    excess = np.maximum(excess, excess.T)
    room = np.minimum.outer(own, own)
    room = np.where(room >= settings.min_own, room, 0.0)
    score = np.where(room > 0, excess / np.maximum(room, 1e-9), 0.0)
    common = {h for h, c in df.items() if c > max(settings.common_min, settings.common_share * n)}
    return CellScores(list(answers), list(prints), np.clip(score, 0.0, 1.0), excess, room, shared, common)


def sheet_scores(cells: dict[str, CellScores]) -> dict[frozenset[str], float]:
    """Author pair → their similarity over the whole sheet: shared beyond chance over all comparable cells,
    divided by what the smaller answers have beyond chance (long answers weigh more than short ones)."""
    authors = sorted({a.author for c in cells.values() for a in c.answers})
    index = {a: i for i, a in enumerate(authors)}
    total_excess = np.zeros((len(authors), len(authors)))
    total_room = np.zeros_like(total_excess)
    for cell in cells.values():
        idx = np.array([index[a.author] for a in cell.answers], dtype=int)
        if not len(idx):
            continue
        total_excess[np.ix_(idx, idx)] += np.where(cell.room > 0, np.maximum(cell.excess, 0.0), 0.0)
        total_room[np.ix_(idx, idx)] += cell.room
    score = np.where(total_room > 0, total_excess / np.maximum(total_room, 1e-9), 0.0)
    out: dict[frozenset[str], float] = {}
    for i, j in zip(*np.nonzero(np.triu(score >= 0.05, 1))):
        out[frozenset((authors[i], authors[j]))] = float(min(score[i, j], 1.0))
    return out


def select_pairs(cell: CellScores, sheet: dict[frozenset[str], float], settings: Settings,
                 given: set[int] | None = None) -> list[Pair]:
    """The pairs of one cell to look at, best first: similar in this cell beyond chance and over the sheet
    (chance agreement in one short cell is common; a copied notebook agrees everywhere). Never two references."""
    answers = cell.answers
    is_ref = np.array([bool(a.origin) for a in answers], dtype=bool)
    ok = (cell.score >= settings.cell_threshold) & (cell.excess >= settings.min_shared)
    ok &= ~np.outer(is_ref, is_ref)
    ranked = []
    for i, j in zip(*np.nonzero(np.triu(ok, 1))):
        a, b = answers[i], answers[j]
        whole = sheet.get(frozenset((a.author, b.author)), 0.0)
        if whole >= settings.threshold:
            ranked.append((float(cell.score[i, j]), whole, int(i), int(j)))
    ranked.sort(key=lambda t: (-t[0], -t[1], answers[t[2]].author, answers[t[3]].author))
    pairs = []
    for s, whole, i, j in ranked[:settings.max_pairs]:
        drop = cell.common | (given or set())
        fa, fb = _located(cell.prints[i], drop), _located(cell.prints[j], drop)
        _, _, (slices_a, slices_b) = compare_files(fa, fb)
        pairs.append(Pair(answers[i], answers[j], s, whole, int(cell.shared[i, j]),
                          _segments(fa, slices_a), _segments(fb, slices_b)))
    return pairs


def analyse(answers: dict[str, list[Answer]], given: Sequence[str], settings: Settings = Settings()
            ) -> dict[str, list[Pair]]:
    """Answer cell → its pairs to look at, best first. ``answers``: cell → answers (a team's members count as
    one author: the first of their answers counts); ``given``: the code the sheet gives (never counts)."""
    drop = given_hashes(given, settings)
    fps = fingerprint_many([a.code for found in answers.values() for a in found], settings)
    cells: dict[str, CellScores] = {}
    for cell, found in answers.items():
        kept: dict[str, Answer] = {}
        for a in found:
            kept.setdefault(a.author, a)
        cells[cell] = score_cell(list(kept.values()), [without(fps[a.code], drop) for a in kept.values()], settings)
    whole = sheet_scores(cells)
    return {cell: select_pairs(scores, whole, settings, drop) for cell, scores in cells.items()}
