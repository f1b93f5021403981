#!/usr/bin/env bash
# The test suite: every sheet validated, mypy, then pytest (real kernels, SQLite and the local
# PostgreSQL server on 127.0.0.1:5432, database `test`, started here if it is installed but down).
# Every stage runs even if an earlier one failed; the exit status is non-zero if any failed.
# `mlph validate` reports a work-in-progress sheet (`wip = true` in its sheet.toml, or not in the semester
# plan) as warnings; MLPH_VALIDATE_STRICT=1 makes those fail too (`mlph validate --strict`).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "starting the local PostgreSQL server"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
failed=()
strict=()
[ "${MLPH_VALIDATE_STRICT:-0}" = 1 ] && strict=(--strict)
mlph validate "${strict[@]}" || failed+=("mlph validate")
mypy || failed+=(mypy)
export MLPH_CHECK_LEFTOVERS=1  # the suite fails if a sandbox, zygote or cgroup outlives it
pytest -q "$@" || failed+=(pytest)
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all stages passed: mlph validate, mypy, pytest"
