"""A seeded corpus of answers made from a real sheet's solution cells: the tests' and the benchmark's data.

Every student writes each answer cell **independently** in a style of their own: each statement of the
solution is rewritten by the student's own random choices (method or function form of numpy reductions,
the axis by keyword or position, ``x ** 2`` or ``x * x`` or ``np.square(x)``, operand and comparison
order, integral float literals, temporaries for results and calls, own comments), all of which keep the
answer correct. Some students **copy** another's whole notebook and disguise each answer: new names,
independent statements reordered, comments and dead code added, ``for`` loops turned into ``while`` loops.
Which pairs are copies is known (:attr:`Corpus.planted`), so a run measures recall and precision.
"""
from __future__ import annotations

import ast
import copy
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$", re.M)
_REDUCTIONS = {"mean", "sum", "max", "min", "std", "var", "argmax", "argmin", "cumsum", "prod", "any", "all"}
_WORDS = ["value", "arr", "tmp", "res", "out", "data", "vec", "mat", "buf", "acc", "part", "item", "cur",
          "step", "aux", "hold", "work", "piece", "term", "thing"]
_COMMENTS = ["compute it", "see lecture", "vectorised", "as in the notes", "this is the main step",
             "careful with shapes", "TODO check", "works for the tests", "numpy does the rest", "helper value",
             "update", "the formula from the sheet", "sanity", "edge case", "loop over samples"]


def solution_code(source: str) -> str:
    """The source cell's code without nbgrader's solution markers (what a student who solved it has)."""
    return _MARKER.sub("", source)


def _np(attr: str) -> ast.Attribute:
    return ast.Attribute(ast.Name("np", ast.Load()), attr, ast.Load())


class _Style(ast.NodeTransformer):
    """One student's way of writing each statement: every choice is theirs, every result the same."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.p = {k: rng.uniform(0.3, 0.7) for k in ("method", "axis", "square", "commute", "compare",
                                                          "literal", "asarray")}

    def coin(self, key: str) -> bool:
        return self.rng.random() < self.p[key]

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr in _REDUCTIONS and self.coin("method")
                and not (isinstance(f.value, ast.Name) and f.value.id in ("np", "math"))):
            node = ast.Call(_np(f.attr), [f.value, *node.args], node.keywords)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in _REDUCTIONS and self.coin("axis"):
            axis = [k for k in node.keywords if k.arg == "axis"]
            is_fn = isinstance(f.value, ast.Name) and f.value.id == "np"
            if axis and len(node.args) == (1 if is_fn else 0):
                node.args.append(axis[0].value)
                node.keywords = [k for k in node.keywords if k.arg != "axis"]
        if (isinstance(f, ast.Attribute) and f.attr in ("asarray", "array") and isinstance(f.value, ast.Name)
                and f.value.id == "np" and self.coin("asarray")):
            if f.attr == "asarray" and self.rng.random() < 0.5:
                node.func = _np("array")  # a copy where a view would do (never the other way: the copy may be written)
            for k in node.keywords:
                if k.arg == "dtype" and isinstance(k.value, ast.Name) and k.value.id == "float":
                    k.value = self.rng.choice([_np("float64"), ast.Name("float", ast.Load()), ast.Constant("float64")])
            if len(node.args) == 1 and [k.arg for k in node.keywords] == ["dtype"] and self.rng.random() < 0.3:
                node.args.append(node.keywords.pop().value)
        if (isinstance(f, ast.Attribute) and f.attr in ("zeros", "ones", "empty") and len(node.args) == 1
                and isinstance(f.value, ast.Name) and f.value.id == "np" and self.coin("literal")):
            node.keywords = [ast.keyword("shape", node.args.pop())] + node.keywords
        if isinstance(f, ast.Name) and f.id == "range" and len(node.args) == 1 and self.coin("axis"):
            node.args.insert(0, ast.Constant(0))
        return node

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        self.generic_visit(node)
        if (isinstance(node.value, ast.Attribute) and node.value.attr == "shape" and isinstance(node.ctx, ast.Load)
                and isinstance(node.slice, ast.Constant) and node.slice.value == 0 and self.coin("square")):
            return ast.Call(ast.Name("len", ast.Load()), [node.value.value], [])
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        self.generic_visit(node)
        if (isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value == 2
                and self.coin("square")):
            if isinstance(node.left, ast.Name) and self.rng.random() < 0.5:
                return ast.BinOp(node.left, ast.Mult(), ast.Name(node.left.id, ast.Load()))
            return ast.Call(_np("square"), [node.left], [])
        if isinstance(node.op, ast.Add | ast.Mult) and self.coin("commute") and not any(
                isinstance(x, ast.List | ast.Tuple | ast.JoinedStr | ast.ListComp)
                or isinstance(x, ast.Constant) and isinstance(x.value, str) for x in (node.left, node.right)):
            node.left, node.right = node.right, node.left
        if (isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) and node.right.value in (2, 2.0)
                and self.coin("compare")):
            return ast.BinOp(ast.Constant(0.5), ast.Mult(), node.left)
        if not isinstance(node.op, ast.FloorDiv | ast.Mod) and self.coin("literal"):
            for side in ("left", "right"):
                c = getattr(node, side)
                if isinstance(c, ast.Constant) and isinstance(c.value, float) and c.value.is_integer() and abs(c.value) < 1e6:
                    setattr(node, side, ast.Constant(int(c.value)))
        return node

    def visit_Compare(self, node: ast.Compare) -> Any:
        self.generic_visit(node)
        flip = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
        if len(node.ops) == 1 and type(node.ops[0]) in flip and self.coin("compare"):
            return ast.Compare(node.comparators[0], [flip[type(node.ops[0])]()], [node.left])
        return node


def _assigned(tree: ast.AST) -> list[str]:
    """Local names the code binds (assignment and loop targets, not parameters nor functions)."""
    params = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in [*n.posonlyargs, *n.args, *n.kwonlyargs, *([n.vararg] if n.vararg else []),
                        *([n.kwarg] if n.kwarg else [])]}
    names: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in params and n.id not in names:
            names.append(n.id)
    return names


def _rename(tree: ast.AST, mapping: dict[str, str]) -> None:
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id in mapping:
            n.id = mapping[n.id]


def _bodies(tree: ast.AST) -> Iterator[list[ast.stmt]]:
    for n in ast.walk(tree):
        for name in ("body", "orelse"):
            block = getattr(n, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt) and not isinstance(n, ast.Module):
                yield block


def _temporaries(tree: ast.AST, rng: random.Random, share: float) -> None:
    """``return <expression>`` → ``name = <expression>; return name`` (the student's habit, or not)."""
    for block in list(_bodies(tree)):
        for i, st in enumerate(list(block)):
            if (isinstance(st, ast.Return) and st.value is not None and not isinstance(st.value, ast.Name | ast.Tuple)
                    and rng.random() < share):
                name = f"{rng.choice(_WORDS)}_{rng.randrange(10)}" if rng.random() < 0.5 else rng.choice(["result", "out", "res", "ans"])
                idx = block.index(st)
                block[idx:idx + 1] = [ast.Assign([ast.Name(name, ast.Store())], st.value), ast.Return(ast.Name(name, ast.Load()))]


def _split_tuples(tree: ast.AST, rng: random.Random, share: float) -> None:
    """``a, b = (x, y)`` (independent parts) → ``a = x`` and ``b = y``, in either order."""
    for block in list(_bodies(tree)):
        for st in list(block):
            if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Tuple)
                    and isinstance(st.value, ast.Tuple) and len(st.value.elts) == len(st.targets[0].elts)
                    and all(isinstance(t, ast.Name) for t in st.targets[0].elts) and rng.random() < share):
                names = {t.id for t in st.targets[0].elts if isinstance(t, ast.Name)}
                if any(isinstance(n, ast.Name) and n.id in names for v in st.value.elts for n in ast.walk(v)):
                    continue
                parts = [ast.Assign([t], v) for t, v in zip(st.targets[0].elts, st.value.elts)]
                if rng.random() < 0.5:
                    parts.reverse()
                i = block.index(st)
                block[i:i + 1] = parts


def _extract_calls(tree: ast.AST, rng: random.Random, share: float) -> None:
    """``y = f(a) * b`` → ``t = f(a)`` then ``y = t * b``: a call inside arithmetic gets a name of its own."""
    for block in list(_bodies(tree)):
        for st in list(block):
            value = st.value if isinstance(st, ast.Assign | ast.Return) else None
            if not isinstance(value, ast.BinOp) or rng.random() >= share:
                continue
            for side in ("left", "right"):
                call = getattr(value, side)
                if isinstance(call, ast.Call) and not any(isinstance(n, ast.Lambda) for n in ast.walk(call)):
                    name = f"{rng.choice(_WORDS)}{rng.choice(['', '_', '1', 's'])}"
                    setattr(value, side, ast.Name(name, ast.Load()))
                    i = block.index(st)
                    block.insert(i, ast.Assign([ast.Name(name, ast.Store())], call))
                    break


def _loop_forms(tree: ast.AST, rng: random.Random, share: float) -> None:
    """``for i, x in enumerate(s)`` → ``for i in range(len(s)): x = s[i]``; ``a[i] += b`` → ``a[i] = a[i] + b``;
    ``y = a if c else b`` → an ``if`` statement."""
    for block in list(_bodies(tree)):
        for st in list(block):
            i = block.index(st)
            if rng.random() >= share:
                continue
            if (isinstance(st, ast.For) and isinstance(st.iter, ast.Call) and isinstance(st.iter.func, ast.Name)
                    and st.iter.func.id == "enumerate" and len(st.iter.args) == 1 and not st.iter.keywords
                    and isinstance(st.iter.args[0], ast.Name) and isinstance(st.target, ast.Tuple)
                    and len(st.target.elts) == 2 and all(isinstance(e, ast.Name) for e in st.target.elts)):
                idx, item = st.target.elts
                seq = st.iter.args[0]
                st.target = ast.Name(idx.id, ast.Store())  # type: ignore[attr-defined]
                st.iter = ast.Call(ast.Name("range", ast.Load()),
                                   [ast.Call(ast.Name("len", ast.Load()), [ast.Name(seq.id, ast.Load())], [])], [])
                st.body.insert(0, ast.Assign([ast.Name(item.id, ast.Store())],  # type: ignore[attr-defined]
                                             ast.Subscript(ast.Name(seq.id, ast.Load()),
                                                           ast.Name(idx.id, ast.Load()), ast.Load())))  # type: ignore[attr-defined]
            elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name | ast.Subscript):
                load = copy.deepcopy(st.target)
                for n in ast.walk(load):
                    if hasattr(n, "ctx"):
                        n.ctx = ast.Load()
                block[i] = ast.Assign([st.target], ast.BinOp(load, st.op, st.value))
            elif (isinstance(st, ast.Assign) and isinstance(st.value, ast.IfExp) and len(st.targets) == 1
                  and isinstance(st.targets[0], ast.Name)):
                t = st.targets[0]
                block[i] = ast.If(st.value.test, [ast.Assign([ast.Name(t.id, ast.Store())], st.value.body)],
                                  [ast.Assign([ast.Name(t.id, ast.Store())], st.value.orelse)])


_REPEATING = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)


def _inline(tree: ast.AST, rng: random.Random, share: float) -> None:
    """``t = e`` followed by the only use of ``t`` in the next statement → ``e`` written there instead."""
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        uses = Counter(n.id for n in ast.walk(fn) if isinstance(n, ast.Name))
        for block in list(_bodies(fn)):
            for i in range(len(block) - 2, -1, -1):
                st, nxt = block[i], block[i + 1]
                if not (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
                        and uses[st.targets[0].id] == 2 and isinstance(nxt, ast.Assign | ast.Return | ast.Expr)
                        and rng.random() < share):
                    continue
                name = st.targets[0].id
                targets = [n for n in ast.walk(nxt) if isinstance(n, ast.Name) and n.id == name
                           and isinstance(n.ctx, ast.Load)]
                repeated = [n for n in ast.walk(nxt) if isinstance(n, _REPEATING)
                            and any(t is x for t in targets for x in ast.walk(n))]
                if len(targets) != 1 or repeated or _draws(st):
                    continue  # once evaluated must stay once evaluated (a comprehension would repeat it)
                value = st.value
                for parent in ast.walk(nxt):
                    for field_name, child in ast.iter_fields(parent):
                        if child is targets[0]:
                            setattr(parent, field_name, value)
                        elif isinstance(child, list) and targets[0] in child:
                            child[child.index(targets[0])] = value
                del block[i]


def _debug_prints(tree: ast.AST, rng: random.Random, n: int) -> None:
    """Leftover ``print`` calls of values the student looked at."""
    for _ in range(n):
        blocks = [b for b in _bodies(tree) if any(isinstance(s, ast.Assign) for s in b)]
        if not blocks:
            return
        block = rng.choice(blocks)
        assigns = [s for s in block if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)]
        if not assigns:
            continue
        st = rng.choice(assigns)
        name = st.targets[0].id  # type: ignore[attr-defined]
        args: list[ast.expr] = [ast.Name(name, ast.Load())]
        if rng.random() < 0.5:
            args.insert(0, ast.Constant(rng.choice([f"{name} =", f"{name}:", "debug", name])))
        block.insert(block.index(st) + 1, ast.Expr(ast.Call(ast.Name("print", ast.Load()), args, [])))


def _comment(code: str, rng: random.Random, n: int) -> str:
    lines = code.split("\n")
    for _ in range(n):
        i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
        indent = re.match(r"\s*", lines[i]).group(0)  # type: ignore[union-attr]
        if lines[i].strip() and not lines[i].strip().startswith(("def ", '"""', "'''", "@")):
            lines.insert(i, f"{indent}# {rng.choice(_COMMENTS)}")
    return "\n".join(lines)


def write_independently(solution: str, rng: random.Random) -> str:
    """One student's own correct answer in their own style."""
    tree = ast.parse(solution)
    tree = _Style(rng).visit(tree)
    _temporaries(tree, rng, rng.uniform(0, 0.9))
    _split_tuples(tree, rng, rng.uniform(0, 1))
    _extract_calls(tree, rng, rng.uniform(0, 0.6))
    _loop_forms(tree, rng, rng.uniform(0, 0.8))
    if rng.random() < 0.6:
        _reorder(tree, rng)
    _inline(tree, rng, rng.uniform(0, 0.7))
    if rng.random() < 0.4:
        _debug_prints(tree, rng, rng.randint(1, 2))
    if rng.random() < 0.5:
        suffix = rng.choice(["_", "2", "_val", "_arr", "_new"])
        _rename(tree, {n: n + suffix for n in _assigned(tree)})
    ast.fix_missing_locations(tree)
    return _comment(ast.unparse(tree), rng, rng.randrange(0, 3))


def _reads_writes(st: ast.stmt) -> tuple[set[str], set[str]]:
    reads: set[str] = set()
    writes: set[str] = set()
    for n in ast.walk(st):
        if isinstance(n, ast.Name):
            (writes if isinstance(n.ctx, ast.Store) else reads).add(n.id)
        elif isinstance(n, ast.Subscript | ast.Attribute) and isinstance(n.ctx, ast.Store):
            base = n.value
            while isinstance(base, ast.Subscript | ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                writes.add(base.id)
    return reads, writes


_DRAWS = {"permutation", "shuffle", "normal", "random", "integers", "choice", "uniform", "standard_normal",
          "randn", "rand", "randint", "binomial", "poisson", "exponential"}


def _draws(st: ast.stmt) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _DRAWS
               for n in ast.walk(st))


def _reorder(tree: ast.AST, rng: random.Random) -> None:
    """Swap adjacent statements that do not depend on each other."""
    for block in _bodies(tree):
        for i in range(len(block) - 1):
            s1, s2 = block[i], block[i + 1]
            if not all(isinstance(s, ast.Assign | ast.AugAssign | ast.AnnAssign) for s in (s1, s2)):
                continue
            (r1, w1), (r2, w2) = _reads_writes(s1), _reads_writes(s2)
            if _draws(s1) and _draws(s2):
                continue  # two draws from one random generator: their order is part of the result
            if not (w1 & (r2 | w2)) and not (w2 & r1) and rng.random() < 0.7:
                block[i], block[i + 1] = s2, s1


def _dead_code(tree: ast.AST, rng: random.Random) -> None:
    snippets = ["debug = False", "if False:\n    print('checking shapes')", "_unused = None",
                "counter = 0\ncounter += 1", "for _ in range(0):\n    pass", "check = True\nif not check:\n    raise ValueError('x')"]
    blocks = [b for b in _bodies(tree)]
    for _ in range(rng.randint(1, 3)):
        block = rng.choice(blocks)
        pos = rng.randrange(0, len(block))
        if isinstance(block[pos], ast.Expr) and isinstance(getattr(block[pos], "value", None), ast.Constant):
            pos += 1  # after a docstring
        block[pos:pos] = ast.parse(rng.choice(snippets)).body


def _while_loops(tree: ast.AST) -> None:
    """``for i in range(a[, b]): body`` → ``i = a; while i < b: body; i += 1`` (loops without continue/else)."""
    for block in _bodies(tree):
        for idx, st in enumerate(list(block)):
            if not (isinstance(st, ast.For) and isinstance(st.target, ast.Name) and not st.orelse
                    and isinstance(st.iter, ast.Call) and isinstance(st.iter.func, ast.Name)
                    and st.iter.func.id == "range" and 1 <= len(st.iter.args) <= 2
                    and not any(isinstance(n, ast.Continue) for n in ast.walk(st))):
                continue
            args = st.iter.args
            start, stop = (ast.Constant(0), args[0]) if len(args) == 1 else (args[0], args[1])
            var = st.target.id
            loop = ast.While(ast.Compare(ast.Name(var, ast.Load()), [ast.Lt()], [stop]),
                             [*st.body, ast.AugAssign(ast.Name(var, ast.Store()), ast.Add(), ast.Constant(1))], [])
            i = block.index(st)
            block[i:i + 1] = [ast.Assign([ast.Name(var, ast.Store())], start), loop]


def disguise(answer: str, rng: random.Random) -> str:
    """A copy of ``answer`` made to look different: always new names, and at least two of reordering,
    comments, dead code and changed loop forms."""
    tree = ast.parse(answer)
    names = _assigned(tree)
    fresh = rng.sample(_WORDS, k=min(len(_WORDS), len(names)))
    _rename(tree, {n: f"{fresh[i % len(fresh)]}{i}" for i, n in enumerate(names)})
    tricks = rng.sample(["reorder", "comments", "dead", "loops"], k=rng.randint(2, 4))
    if "reorder" in tricks:
        _reorder(tree, rng)
    if "dead" in tricks:
        _dead_code(tree, rng)
    if "loops" in tricks:
        _while_loops(tree)
    ast.fix_missing_locations(tree)
    code = ast.unparse(tree)
    return _comment(code, rng, rng.randint(2, 5)) if "comments" in tricks else code


@dataclass
class Corpus:
    """Answers (cell → student → code), the planted copies (cell → {source, copier} pairs) and who copied
    from whom (copier → source), over ``students``; ``short``: cells whose solution is a few lines."""
    sheet: str
    students: list[str]
    answers: dict[str, dict[str, str]]
    copied_from: dict[str, str]
    short: set[str] = field(default_factory=set)

    @property
    def planted(self) -> dict[str, set[frozenset[str]]]:
        return {cell: {frozenset((c, s)) for c, s in self.copied_from.items()} for cell in self.answers}

    def same_source(self, a: str, b: str) -> bool:
        """Both are copies of one notebook (or one copies the other)."""
        return self.copied_from.get(a, a) == self.copied_from.get(b, b)


def solution_cells(source_nb: dict[str, Any]) -> dict[str, str]:
    cells = {}
    for cell in source_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution"):
            cells[meta["grade_id"]] = solution_code("".join(cell["source"]))
    return cells


def is_short(solution: str) -> bool:
    """A task where everyone writes the same few lines: at most three lines of code in the solution body."""
    body = [n for n in ast.walk(ast.parse(solution)) if isinstance(n, ast.stmt)
            and not isinstance(n, ast.FunctionDef | ast.Import | ast.ImportFrom)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return len(body) <= 3


def seeded_corpus(source_nb: dict[str, Any], sheet: str, students: Sequence[str], seed: int,
                  copy_share: float = 0.1) -> Corpus:
    """Independent answers of ``students`` to every answer cell, and ``copy_share`` of them copying another's."""
    rng = random.Random(f"{sheet}:{seed}")
    cells = solution_cells(source_nb)
    order = list(students)
    copiers = rng.sample(order, k=int(round(copy_share * len(order))))
    originals = [s for s in order if s not in copiers]
    copied_from = {c: rng.choice(originals) for c in copiers}
    answers: dict[str, dict[str, str]] = {}
    for cell, solution in cells.items():
        own = {s: write_independently(solution, random.Random(f"{sheet}:{seed}:{cell}:{s}")) for s in originals}
        copies = {c: disguise(own[src], random.Random(f"{sheet}:{seed}:{cell}:{c}:copy"))
                  for c, src in copied_from.items()}
        answers[cell] = {s: (own | copies)[s] for s in order}
    return Corpus(sheet, order, answers, copied_from, {c for c, sol in cells.items() if is_short(sol)})


def write_handins(corpus: Corpus, release_nb: dict[str, Any], submitted: Path, notebook: str) -> None:
    """Every student's notebook (the release notebook, their answers in its answer cells) under ``submitted``."""
    for student in corpus.students:
        nb = json.loads(json.dumps(release_nb))
        for cell in nb["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in corpus.answers:
                cell["source"] = corpus.answers[gid][student]
        path = submitted / student / corpus.sheet / notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb), encoding="utf-8")


@dataclass(frozen=True)
class Measured:
    """Recall: planted pairs (cells with more than a few lines) that are listed; precision: listed pairs that
    are copies (of one notebook); ``short_false``: independent pairs listed in short cells."""
    planted: int
    found: int
    listed: int
    correct: int
    short_false: int

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.listed if self.listed else 1.0


def measure(corpus: Corpus, listed: dict[str, list[tuple[str, str]]]) -> Measured:
    """Score what a run listed (cell → student pairs) against the planted copies."""
    planted = found = n_listed = correct = short_false = 0
    for cell, pairs in corpus.planted.items():
        got = {frozenset(p) for p in listed.get(cell, [])}
        if cell not in corpus.short:
            planted += len(pairs)
            found += len(pairs & got)
        n_listed += len(got)
        right = sum(1 for p in got if corpus.same_source(*sorted(p)))
        correct += right
        if cell in corpus.short:
            short_false += len(got) - right
    return Measured(planted, found, n_listed, correct, short_false)
