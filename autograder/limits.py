"""Per-submission limits: a light module, so that the CLI can show defaults without importing nbclient."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Per-submission limits (sane defaults; `mlph autograde` options and mlph.toml override)."""

    cell_timeout: float = 30.0
    notebook_timeout: float = 300.0
    output_bytes: int = 1_000_000
    interrupt_grace: float = 3.0
    startup_timeout: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
