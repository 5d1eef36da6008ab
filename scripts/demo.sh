#!/usr/bin/env bash
# The end-to-end demo on local Spark (set-up runs first when needed). Today it runs every real
# step the project has, each as its own job:
#   1. sparkdl generate   200k rows of synthetic classification data as CSV, on the executors
#   2. sparkdl prepare    validate, featurize, split and publish them as training-ready Parquet
#   3. sparkdl train      2 Horovod ranks in a Spark barrier stage train an MLP on that Parquet,
#                         with checkpoints, live progress and metrics.json (runs/train)
#   4. allreduce check    the same launcher all-reduces known tensors over Gloo and prints what
#                         each rank got
# Extra arguments go to every step, e.g. scripts/demo.sh --set generate.rows=50000
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PY="$ROOT/.venv/bin/python"
CONF=(--config conf/local.yaml)

echo "== 1/4 generate raw data (data/raw/classification)" >&2
"$PY" jobs/generate_data.py "${CONF[@]}" "$@"
echo "== 2/4 prepare training-ready Parquet (data/prepared/classification)" >&2
"$PY" jobs/prepare_data.py "${CONF[@]}" "$@"
echo "== 3/4 train with 2 Horovod ranks (runs/train)" >&2
rm -rf runs/train  # a new run each time; a kept folder would resume (or refuse another config)
"$PY" jobs/train_horovod.py "${CONF[@]}" "$@"
echo "== 4/4 Horovod all-reduce in a Spark barrier stage" >&2
exec "$PY" jobs/allreduce_check.py "${CONF[@]}" "$@"
