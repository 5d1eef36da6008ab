#!/usr/bin/env bash
# Run the test suite: set-up when needed, ruff, then pytest (unit, integration, cluster tiers;
# gpu tests skip with a reason where no GPU is present). Extra arguments go to pytest, e.g.
#   scripts/test.sh tests/unit          # the fast tier only
#   scripts/test.sh -m "not cluster"    # skip the separate-JVM tests
# The test files run on SPARKDL_TEST_WORKERS pytest-xdist workers (default 2; 1 runs them in this
# process, one after the other): a file's tests stay together on one worker, in order. The
# suite keeps 2 cores about half busy one test at a time (it waits on JVMs, rank start-ups,
# timeouts): two files at once took 13 min 32 s here, against 19 min 30 s one at a time.
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
workers="${SPARKDL_TEST_WORKERS:-2}"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || {
  echo "[test] SPARKDL_TEST_WORKERS=$workers: use a whole number of workers, 1 or more" >&2; exit 2; }
parallel=(); [[ "$workers" -gt 1 ]] && parallel=(-n "$workers" --dist loadfile)
# --durations: the slowest tests, so the suite's time budget (25 min in CI) can be kept
exec "$PY" -m pytest -p no:cacheprovider --durations=30 ${parallel[@]+"${parallel[@]}"} "$@"
