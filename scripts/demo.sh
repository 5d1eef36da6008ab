#!/usr/bin/env bash
# The end-to-end demo on local Spark (set-up runs first when needed).
# Today the most complete real path: a Spark barrier stage of 2 tasks that become Horovod ranks,
# all-reduce known tensors over Gloo, and print what each rank got. Extra arguments go to the
# job, e.g. scripts/demo.sh --set allreduce_check.tensor_size=4
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$ROOT/.venv/bin/python" jobs/allreduce_check.py --config conf/local.yaml "$@"
