#!/usr/bin/env bash
# The main job on the embedded default (SQLite, local workers): `mlph demo` on a simulated class.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/mlph demo "$@"
