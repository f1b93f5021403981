#!/usr/bin/env bash
# The test suite: every sheet validated, mypy, then pytest (real kernels, SQLite and the local
# PostgreSQL server on 127.0.0.1:5432, database `test`, started here if it is installed but down).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "starting the local PostgreSQL server"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
mlph validate
mypy
export MLPH_CHECK_LEFTOVERS=1  # the suite fails if a sandbox, zygote or cgroup outlives it
exec pytest -q "$@"
