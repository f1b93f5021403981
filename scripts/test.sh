#!/usr/bin/env bash
# The test suite: every sheet validated, then pytest (real kernels, SQLite and the local PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
mlph validate
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"
