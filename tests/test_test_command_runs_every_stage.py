"""`bash scripts/test.sh` runs every stage (validate, mypy, pytest) even when one fails, and fails if any did;
MLPH_VALIDATE_STRICT=1 passes --strict to `mlph validate`. (Run on a copy with stand-ins for the three tools.)"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _copy(tmp_path: Path, failing: set[str]) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "test.sh", root / "scripts" / "test.sh")
    (root / "scripts" / "bootstrap.sh").write_text("exit 0\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("mlph", "mypy", "pytest"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$(dirname "$0")/../../ran"\n'
                                    f'exit {1 if tool in failing else 0}\n')
        (bin_dir / tool).chmod(0o755)
    return root


def _run(root: Path, **env: str) -> tuple[int, list[str], str]:
    done = subprocess.run(["bash", str(root / "scripts" / "test.sh"), "-x"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=120)
    return done.returncode, (root / "ran").read_text().splitlines(), done.stderr


def test_a_failing_validation_still_runs_mypy_and_pytest_and_fails_the_run(tmp_path):
    code, ran, err = _run(_copy(tmp_path, failing={"mlph"}))
    assert ran == ["mlph validate", "mypy ", "pytest -q -x"] and code == 1 and "FAILED: mlph validate" in err


def test_all_stages_passing_pass_and_strict_is_passed_on(tmp_path):
    root = _copy(tmp_path, failing=set())
    code, ran, _ = _run(root, MLPH_VALIDATE_STRICT="1")
    assert code == 0 and ran == ["mlph validate --strict", "mypy ", "pytest -q -x"]
    root = _copy(tmp_path / "b", failing={"pytest", "mypy"})
    code, ran, err = _run(root)
    assert code == 1 and "FAILED: mypy pytest" in err and ran[0] == "mlph validate"
