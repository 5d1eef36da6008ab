#!/usr/bin/env bash
# Benchmarks that print measured ratios side by side (set-up runs first when needed).
#   scripts/bench.sh prepare [--rows N] [--repeats R]
#   scripts/bench.sh train [--rows N] [--epochs E] [--batch B] [--hidden H] [--depth D]
#   scripts/bench.sh baselines [--rows N] [--partitions P]
#   scripts/bench.sh comms [--rates off,10gbit,1gbit] [--period H] [--cnn-head 2048,2048] (root: rate-limited namespaces)
#   scripts/bench.sh plan [--rates off,1gbit] [--models mlp,cnn] (sparkdl plan's predictions beside measured trainings)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$ROOT/.venv/bin/sparkdl" --log-level WARNING bench "${@:-prepare}"
