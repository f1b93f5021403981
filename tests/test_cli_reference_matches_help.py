"""The command reference (docs/reference.md) is what `mlph --help` prints."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_command_reference_is_current():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_reference.py"), "--check"], cwd=REPO)
    assert done.returncode == 0, "docs/reference.md is stale: run `python scripts/cli_reference.py`"


def test_every_command_is_in_the_reference():
    import click

    from autograder.cli import main

    text = (REPO / "docs" / "reference.md").read_text()
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert f"### `mlph {name}`" in text
