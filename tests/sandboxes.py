"""What sandboxes exist now, for tests that kill a grader and check what it left: this checkout's sandbox
processes and kernel zygotes, and the sandbox cgroups (v2, or v1 per controller)."""
from __future__ import annotations

import subprocess
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def sandbox_processes() -> set[str]:
    """Processes of this checkout's sandboxes (bwrap's command line names the sandbox directory and this
    checkout's Python) and kernel zygotes; other checkouts' test runs on the machine are not counted."""
    here = str(Path(__file__).resolve().parents[1])
    found = subprocess.run(["pgrep", "-af", "mlph-sandbox-|zygote_server"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in found.splitlines() if here in line}


def sandbox_cgroups() -> set[Path]:
    """The sandbox cgroups there are now, of any run on the machine, except those whose processes all belong to
    other checkouts (graders of other sessions start and end sandboxes while a test runs)."""
    parents = (CGROUP_ROOT / "mlph", *(CGROUP_ROOT / c / "mlph" for c in ("cpu", "memory", "pids")))
    return {d for parent in parents if parent.is_dir() for d in parent.glob("k*") if d.is_dir() and not _foreign(d)}


def _foreign(cgroup: Path) -> bool:
    """The cgroup holds processes, and none of them names this checkout (bwrap binds its Python; a kernel runs its
    zygote's script)."""
    here = str(Path(__file__).resolve().parents[1])
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return False
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return bool(lines) and not any(here in line for line in lines)
