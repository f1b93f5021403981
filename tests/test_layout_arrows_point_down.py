"""The layout's arrows point one way: the gradebook's rooms import only rooms below them, the gradebook
never imports the autograder or the web application, and no two rooms import each other (directly or
round a circle). Every import counts, also one inside a function."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gradebook", "autograder", "web")
# The gradebook's rooms from the bottom up; a room may import its own and lower ones.
GRADEBOOK_ORDER = ("errors", "nbformat_import", "store", "course", "people", "points", "admission", "exports", "mail", "cli")
# The autograder's rooms that compose everything (the root command, the demo) may reach the web app.
AUTOGRADER_TOP = ("autograder.cli", "autograder.demo")


def room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved), ours only."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    known = {module_name(p) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            src = room(module_name(path))
            for target in imports_of(path):
                while target not in known and "." in target:  # `from x import name`: the module is x
                    target = target.rpartition(".")[0]
                dst = room(target)
                if dst != src and dst not in PACKAGES:
                    graph[src].add(dst)
                elif dst in PACKAGES and dst != src.split(".")[0]:
                    graph[src].add(dst)
    return graph


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    rank = {f"gradebook.{r}": i for i, r in enumerate(GRADEBOOK_ORDER)}
    return sorted((src, dst) for src, dsts in graph.items() if src in rank
                  for dst in dsts if dst in rank and rank[dst] > rank[src])


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_gradebook_rooms_import_only_rooms_below_them() -> None:
    graph = room_graph()
    assert upward(graph) == []
    ranked = {f"gradebook.{r}" for r in GRADEBOOK_ORDER}
    assert {r for r in graph if r.startswith("gradebook.")} <= ranked, "a gradebook room without a rank"


def test_the_gradebook_imports_neither_the_autograder_nor_the_web_app() -> None:
    wrong = [(src, dst) for src, dsts in room_graph().items() if src.startswith("gradebook")
             for dst in dsts if dst.split(".")[0] in ("autograder", "web")]
    assert wrong == []


def test_only_the_composing_rooms_of_the_autograder_reach_the_web_app() -> None:
    wrong = [(src, dst) for src, dsts in room_graph().items()
             if src.startswith("autograder") and src not in AUTOGRADER_TOP
             for dst in dsts if dst.split(".")[0] == "web"]
    assert wrong == []


def test_no_two_rooms_import_each_other_round_a_circle() -> None:
    assert circles(room_graph()) == []


def test_the_checks_find_a_planted_upward_arrow_and_circle() -> None:
    graph = room_graph()
    graph["gradebook.store"].add("gradebook.exports")
    assert ("gradebook.store", "gradebook.exports") in upward(graph)
    assert any("gradebook.store" in c and "gradebook.exports" in c for c in circles(graph))
