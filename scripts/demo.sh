#!/usr/bin/env bash
# The end-to-end demo on local Spark (set-up runs first when needed): one `sparkdl pipeline` run,
#   generate  200k rows of synthetic classification data as CSV, on the executors
#   prepare   validate, featurize, split and publish them as training-ready Parquet
#   train     2 Horovod ranks in a Spark barrier stage train an MLP on that Parquet
#   sgd       the ParallelSGD baseline (and MLlib LogisticRegression) on the same data
#   kmeans    the distributed k-means baseline (and MLlib's cost per iteration)
#   evaluate  the trained model scored on the test split on the executors
#   report    runs/pipeline/<run id>/report/report.md with plots
# Each demo is a new run id; extra arguments go to the pipeline, e.g.
#   scripts/demo.sh --set generate.rows=50000
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
RUN_ID="demo-$(date -u +%Y%m%dT%H%M%S)"
exec "$ROOT/.venv/bin/python" jobs/pipeline.py --config conf/local.yaml --run-id "$RUN_ID" "$@"
