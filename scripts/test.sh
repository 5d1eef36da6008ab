#!/usr/bin/env bash
# Run the test suite: set-up when needed, ruff, then pytest (unit, integration, cluster tiers;
# gpu tests skip with a reason where no GPU is present). Extra arguments go to pytest, e.g.
#   scripts/test.sh tests/unit          # the fast tier only
#   scripts/test.sh -m "not cluster"    # skip the separate-JVM tests
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
PY="$ROOT/.venv/bin/python"

echo "[test] ruff check" >&2
"$ROOT/.venv/bin/ruff" check .
"$ROOT/.venv/bin/ruff" format --check --quiet . || {
  echo "[test] files need formatting: run .venv/bin/ruff format ." >&2; exit 1; }

echo "[test] pytest" >&2
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PY" -m pytest -p no:cacheprovider "$@"
