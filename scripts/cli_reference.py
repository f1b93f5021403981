"""Write docs/reference.md (the command reference) from `mlph --help` (run with --check to only compare)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from autograder.cli import main

README = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[str, str]]:
    ctx = click.Context(cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100)
    out = [(" ".join(path), cmd.get_help(ctx))]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _walk(sub, [*path, name])
    return out


def reference() -> str:
    parts = []
    for name, text in _walk(main, ["mlph"]):
        parts.append(f"### `{name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def render(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference()}{END}{tail}"


if __name__ == "__main__":
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if fresh == current else 1)
    README.write_text(fresh, encoding="utf-8")
