"""Per-submission limits: a light module, so that the CLI can show defaults without importing the grader."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-submission limits (sane defaults; `mlph autograde` options override).

    ``output_bytes`` is the output kept per cell, ``notebook_output_bytes`` per notebook (every kind of output).

    Times are seconds; sizes are bytes. ``memory_bytes`` caps the sandbox's cgroup (all its processes
    and its tmpfs together) and each process's address space; ``max_processes`` counts tasks (threads
    included); ``file_bytes`` is the largest file a process may write; ``tmp_bytes`` the size of each
    of the sandbox's two tmpfs (/tmp and the home directory).
    """

    cell_timeout: float = 30.0
    notebook_timeout: float = 300.0
    output_bytes: int = 1_000_000
    notebook_output_bytes: int = 8_000_000
    interrupt_grace: float = 3.0
    startup_timeout: float = 60.0
    memory_bytes: int = 2048 * MiB
    max_processes: int = 64
    file_bytes: int = 64 * MiB
    tmp_bytes: int = 256 * MiB

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
