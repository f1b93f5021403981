"""Benchmark: what the bounded JSON scan (autograder/intake/boundedjson.py) adds to reading a notebook.

For the released notebooks of the real sheets (honest input) and for 20 MB worst cases (the largest a hand-in
may be), prints the time of ``json.loads`` alone (the physical limit: the parse every reader needs anyway), of
the scan, and their ratio, measured in the same run (best of 5). Worst cases the plain parser cannot take at
all (100 000 levels, a 5000-digit integer) are refused by the scan in the time shown.

    .venv/bin/python benchmarks/intake_json.py
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from autograder.intake.boundedjson import scan  # noqa: E402
from autograder.intake.safe import IntakeRefused  # noqa: E402


def best(fn: Callable[[], object], runs: int = 5) -> tuple[float, str]:
    times, outcome = [], "ok"
    for _ in range(runs):
        t = time.perf_counter()
        try:
            fn()
        except IntakeRefused:
            outcome = "refused"
        except (RecursionError, ValueError) as exc:
            outcome = type(exc).__name__
        times.append(time.perf_counter() - t)
    return min(times), outcome


def row(name: str, data: bytes) -> None:
    plain, plain_out = best(lambda: json.loads(data))
    scanned, scan_out = best(lambda: scan(data, "x.ipynb"))
    ratio = f"{scanned / plain:5.2f}" if plain_out == "ok" else "  -  "
    print(f"{name:34s} {len(data) / 1e6:7.2f} MB  json.loads {plain * 1e3:8.1f} ms ({plain_out:14s})"
          f"  scan {scanned * 1e3:8.1f} ms ({scan_out:7s})  scan/loads {ratio}")


def main() -> None:
    for path in sorted((REPO / "release").glob("sheet*/*.ipynb")):
        row(f"{path.parent.name}/{path.name}", path.read_bytes())
    big = 20_000_000
    row("one 20 MB string (an image)", b'["' + b"a" * (big - 4) + b'"]')
    row("20 MB of short source lines", b"[" + b'"x = np.arange(10)  # a line\\n",' * (big // 32) + b'""]')
    row("20 MB of 2-byte strings", b"[" + b'"ab",' * (big // 5) + b'""]')
    row("20 MB of empty lists", b"[" + b"[]," * (big // 3) + b"[]]")
    row("100 000 levels deep", b"[" * 100_000 + b"]" * 100_000)
    row("a 5000-digit integer", b"[" + b"7" * 5000 + b"]")


if __name__ == "__main__":
    main()
