#!/usr/bin/env bash
# spark-submit a sparkdl job with the project packed for executors that have nothing installed:
#   scripts/submit.sh --master spark://127.0.0.1:7077 jobs/pipeline.py -c conf/local.yaml -c conf/standalone.yaml
#   scripts/submit.sh --master yarn --deploy-mode client jobs/train_horovod.py -c conf/yarn.yaml
# Builds once per version of the stack (kept in dist/):
#   dist/sparkdl_pipeline-<version>-py3-none-any.whl   the project, shipped (as .zip) with --py-files
#   dist/sparkdl-env-<stack hash>.tar.gz               the .venv packed with venv-pack (TensorFlow,
#                                                      Horovod, ...)
# How the environment travels depends on where the driver runs:
#   - YARN, or --deploy-mode cluster: --archives ...#environment (YARN localizes it on each node
#     without the driver unpacking it; a cluster-mode driver needs it itself).
#   - spark:// and k8s:// in client mode: the driver runs this machine's .venv, yet Spark unpacks
#     every --archives on the driver too (21 s and 1.9 GB of its disk per submission, measured
#     on a standalone cluster here), and on every executor of every application (15 s each).
#     There the archive goes with --files, as dist/sparkdl-env-<stack hash>.pack (a name Spark
#     does not untar by itself), and the executors' Python is dist/sparkdl-python-<stack hash>,
#     scripts/executor-python.sh shipped with it: it unpacks the archive once per node and stack
#     into the node's cache (a standalone worker's dir: <worker dir>/.sparkdl-env), deletes the
#     executor's copy and execs the cached environment's Python.
# Every -c/--config file is also shipped with --files. Options before the job file go to
# spark-submit; the job file and what follows go to the job. The driver runs this machine's .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
PY="$ROOT/.venv/bin/python"
DIST="$ROOT/dist"
mkdir -p "$DIST"
log() { printf '[submit] %s\n' "$*" >&2; }

# ---- split the command line ---------------------------------------------------------------
submit_args=(); job=""; job_args=()
for arg in "$@"; do
  if [[ -z "$job" && "$arg" == *.py ]]; then job="$arg"; continue; fi
  if [[ -z "$job" ]]; then submit_args+=("$arg"); else job_args+=("$arg"); fi
done
[[ -n "$job" ]] || { echo "usage: $0 [spark-submit options] jobs/<job>.py [job options]" >&2; exit 2; }
master=""; deploy_mode="client"
for ((i = 0; i < ${#submit_args[@]}; i++)); do
  case "${submit_args[$i]}" in
    --master) master="${submit_args[$((i + 1))]:-}" ;;
    --master=*) master="${submit_args[$i]#--master=}" ;;
    --deploy-mode) deploy_mode="${submit_args[$((i + 1))]:-}" ;;
    --deploy-mode=*) deploy_mode="${submit_args[$i]#--deploy-mode=}" ;;
  esac
done
files=()
for ((i = 0; i < ${#job_args[@]}; i++)); do
  case "${job_args[$i]}" in -c|--config) files+=("$(realpath "${job_args[$((i + 1))]}")") ;; esac
done

# ---- build the wheel and the packed environment (cached) -----------------------------------
[[ -x "$ROOT/.venv/bin/venv-pack" ]] ||
  "$PY" -m pip install -q -c requirements/constraints.txt "venv-pack==0.2.0"
wheel="$(ls "$DIST"/sparkdl_pipeline-*.whl 2>/dev/null | head -n 1 || true)"
src_hash="$(cat pyproject.toml $(git ls-files sparkdl) 2>/dev/null | sha256sum | cut -c1-16)"
if [[ ! -f "$DIST/.wheel-$src_hash" || -z "$wheel" ]]; then
  rm -f "$DIST"/sparkdl_pipeline-*.whl "$DIST"/sparkdl_pipeline-*.zip "$DIST"/.wheel-*
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DIST" . >&2
  touch "$DIST/.wheel-$src_hash"
  wheel="$(ls "$DIST"/sparkdl_pipeline-*.whl | head -n 1)"
  log "built $wheel"
fi
# PySpark puts only .zip/.egg/.jar --py-files on the executors' sys.path; a wheel is a zip.
pyfile="${wheel%.whl}.zip"
cp -f "$wheel" "$pyfile"
# What executors never use: the JVM jars of pyspark (the worker's own Spark runs the executor),
# TensorFlow's C++ headers and cmake (both only for building Horovod). Left out, the archive
# holds 28k files instead of 40k and 1.8 GB instead of 2.4 GB, which every executor unpacks once
# per application (and, with --archives, a standalone driver too).
slim=('lib/python*/site-packages/pyspark/jars/*' 'lib/python*/site-packages/tensorflow/include/*'
  'lib/python*/site-packages/cmake/*' 'bin/cmake' 'bin/ccmake' 'bin/cpack' 'bin/ctest')
env_hash="$( (cat .venv/.sparkdl-setup.sha256; printf '%s\n' "${slim[@]}") | sha256sum | cut -c1-16)"
archive="$DIST/sparkdl-env-$env_hash.tar.gz"
if [[ ! -f "$archive" ]]; then
  rm -f "$DIST"/sparkdl-env-*.tar.gz
  log "packing .venv with venv-pack into $archive (once per stack; a few minutes)"
  # venv-pack redraws a progress bar; into a log (not a terminal) that is thousands of lines.
  quiet=(); [[ -t 2 ]] || quiet=(--quiet)
  excludes=(); for pattern in "${slim[@]}"; do excludes+=(--exclude "$pattern"); done
  # The project itself goes as the wheel: leave out the editable install's path hooks.
  "$ROOT/.venv/bin/venv-pack" -p "$ROOT/.venv" -o "$archive.tmp" --format tar.gz \
    --compress-level 1 --exclude 'lib/python*/site-packages/__editable__*' --force \
    "${excludes[@]}" \
    "${quiet[@]}" >&2
  mv "$archive.tmp" "$archive"
fi

# ---- the executors' Python where the driver must not unpack the archive -------------------
launcher="$DIST/sparkdl-python-$env_hash"
# Spark untars any --files named *.tar.gz, *.tgz or *.tar (on the driver too): ship a link to the
# archive under a name it leaves alone, and scripts/executor-python.sh (which unpacks it once per
# node) named after the stack it runs.
shipped="$DIST/sparkdl-env-$env_hash.pack"
if [[ ! "$shipped" -ef "$archive" ]] || ! cmp -s scripts/executor-python.sh "$launcher"; then
  rm -f "$DIST"/sparkdl-python-* "$DIST"/sparkdl-env-*.pack
  ln "$archive" "$shipped"
  cp scripts/executor-python.sh "$launcher.tmp"
  chmod +x "$launcher.tmp" && mv "$launcher.tmp" "$launcher"
fi

# ---- submit ---------------------------------------------------------------------------------
source "$ROOT/.venv/bin/activate"   # pyspark's spark-submit finds SPARK_HOME from the venv
cmd=(spark-submit --py-files "$pyfile" --conf spark.pyspark.driver.python="$PY")
if [[ ( "$master" == spark://* || "$master" == k8s://* ) && "$deploy_mode" == client ]]; then
  files=("$shipped" "$launcher" ${files[@]+"${files[@]}"})
  cmd+=(--conf "spark.pyspark.python=./$(basename "$launcher")")
else
  cmd+=(--archives "$archive#environment" --conf spark.pyspark.python=./environment/bin/python)
fi
[[ ${#files[@]} -gt 0 ]] && cmd+=(--files "$(IFS=,; echo "${files[*]}")")
cmd+=("${submit_args[@]}" "$job" "${job_args[@]}")
log "${cmd[*]}"
exec "${cmd[@]}"
