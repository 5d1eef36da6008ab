#!/usr/bin/env bash
# The end-to-end demo on local Spark (set-up runs first when needed). Today it runs every real
# step the project has, each as its own job:
#   1. sparkdl generate   200k rows of synthetic classification data as CSV, on the executors
#   2. sparkdl prepare    validate, featurize, split and publish them as training-ready Parquet
#   3. allreduce check    a Spark barrier stage of 2 tasks that become Horovod ranks, all-reduce
#                         known tensors over Gloo and print what each rank got
# Extra arguments go to every step, e.g. scripts/demo.sh --set generate.rows=50000
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY="$ROOT/.venv/bin/python"
CONF=(--config conf/local.yaml)

echo "== 1/3 generate raw data (data/raw/classification)" >&2
"$PY" jobs/generate_data.py "${CONF[@]}" "$@"
echo "== 2/3 prepare training-ready Parquet (data/prepared/classification)" >&2
"$PY" jobs/prepare_data.py "${CONF[@]}" "$@"
echo "== 3/3 Horovod all-reduce in a Spark barrier stage" >&2
exec "$PY" jobs/allreduce_check.py "${CONF[@]}" "$@"
