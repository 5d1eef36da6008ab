#!/usr/bin/env bash
# Set up sparkdl on a fresh Linux machine: Java 17+, a .venv with the pinned stack, and Horovod
# 0.28.1 built from source against TensorFlow with Gloo. Idempotent: a second run on the same
# machine checks a stamp and returns in seconds; --force reinstalls.
#
# Environment:
#   SPARKDL_PYTHON   interpreter to build the venv from (default: python3.11, python3.10, python3)
#   SPARKDL_VENV     venv folder (default: <repo>/.venv)
#   SPARKDL_GPU=1    GPU executors: TensorFlow 2.15.1 with its CUDA 12 wheels instead of
#                    tensorflow-cpu, and Horovod built with NCCL (HOROVOD_GPU_OPERATIONS=NCCL);
#                    needs the CUDA 12 toolkit (nvcc) at CUDA_HOME (default /usr/local/cuda)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPARKDL_VENV:-$ROOT/.venv}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.sparkdl-setup.sha256"
HOROVOD_VERSION="0.28.1"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
GPU="${SPARKDL_GPU:-0}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- Java 17+ -------------------------------------------------------------------------------
java_major() {
  local java_bin="$1" line
  line="$("$java_bin" -version 2>&1 | head -n 1)" || return 1
  # openjdk version "17.0.15" ... / java version "1.8.0_392"
  line="${line#*\"}"; line="${line%%\"*}"
  [[ "$line" == 1.* ]] && line="${line#1.}"
  echo "${line%%[.+-]*}"
}

find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"; return; fi
  command -v java || true
}

ensure_java() {
  local java_bin major
  java_bin="$(find_java)"
  if [[ -n "$java_bin" ]]; then
    major="$(java_major "$java_bin" || echo 0)"
    if (( major >= 17 )); then log "Java $major at $java_bin"; return; fi
    log "Java at $java_bin is version $major; Spark 3.5 here needs 17 or newer"
  else
    log "no Java found (neither \$JAVA_HOME/bin/java nor java on PATH)"
  fi
  local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openjdk-17-jre-headless"
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    log "installing a headless JRE: $cmd"
    bash -c "$cmd" >&2
    java_bin="$(command -v java)" || die "installed openjdk-17-jre-headless but java is still not on PATH"
    major="$(java_major "$java_bin")"
    (( major >= 17 )) || die "java on PATH is version $major after installing JRE 17; set JAVA_HOME to the JDK 17 folder"
  else
    die "Java 17+ is required. Run as root: sudo bash -c '$cmd'  (or install any JDK 17+ and set JAVA_HOME)"
  fi
}

# ---- Python ---------------------------------------------------------------------------------
pick_python() {
  local c
  for c in ${SPARKDL_PYTHON:-} python3.11 python3.10 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,11) else 1)' 2>/dev/null; then
      command -v "$c"; return
    fi
  done
  die "Python 3.10 or 3.11 is required (TensorFlow 2.15 and Horovod 0.28.1 support no newer); install python3.11 and python3.11-venv, or point SPARKDL_PYTHON at one"
}

stack_hash() {
  { cat "$ROOT/pyproject.toml" "$CONSTRAINTS" "$ROOT/scripts/setup.sh"; echo "gpu=$GPU"; } \
    | sha256sum | cut -d' ' -f1
}

check_horovod_build() {
  local out
  out="$(TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/horovodrun" --check-build 2>/dev/null)" \
    || die "'horovodrun --check-build' failed; rerun scripts/setup.sh --force"
  if ! grep -q '\[X\] TensorFlow' <<<"$out" || [[ "$(grep -c '\[X\] Gloo' <<<"$out")" -lt 2 ]]; then
    printf '%s\n' "$out" >&2
    die "Horovod was built without TensorFlow or Gloo (see above); rerun scripts/setup.sh --force"
  fi
  if [[ "$GPU" == 1 ]] && ! grep -q '\[X\] NCCL' <<<"$out"; then
    printf '%s\n' "$out" >&2
    die "SPARKDL_GPU=1 but Horovod was built without NCCL (see above); check CUDA_HOME and rerun with --force"
  fi
  log "horovodrun --check-build: TensorFlow and Gloo present$([[ "$GPU" == 1 ]] && echo ', NCCL present')"
}

main() {
  ensure_java
  local py want
  want="$(stack_hash)"
  if (( ! FORCE )) && [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
     && "$VENV/bin/python" -c 'import horovod, pyspark, petastorm, sparkdl' 2>/dev/null; then
    log "already set up ($VENV matches pyproject.toml and requirements/constraints.txt)"
    return
  fi

  py="$(pick_python)"
  if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,11) else 1)'; then
    log "existing $VENV has an unsupported Python; recreating it"
    rm -rf "$VENV"
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $py ($("$py" --version 2>&1))"
    "$py" -m venv "$VENV" || die "'$py -m venv' failed; on Debian/Ubuntu install python3-venv (apt-get install python3.11-venv)"
  fi
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  export PATH="$VENV/bin:$PATH"  # Horovod's build looks for cmake on PATH

  log "installing pinned packages (requirements/constraints.txt)"
  "${pip[@]}" install -q -c "$CONSTRAINTS" pip setuptools wheel
  "${pip[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation -e "$ROOT[dev,horovod-build]"

  local reinstall=()
  (( FORCE )) && reinstall=(--force-reinstall --no-deps)
  local build_env=(HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1
    HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_CPU_OPERATIONS=GLOO)
  local cache=()
  if [[ "$GPU" == 1 ]]; then
    log "GPU stack: tensorflow[and-cuda]==2.15.1 (CUDA 12 wheels, NCCL included)"
    "${pip[@]}" uninstall -q -y tensorflow-cpu || true
    "${pip[@]}" install -q "tensorflow[and-cuda]==2.15.1"
    local nccl
    nccl="$("$VENV/bin/python" -c 'import os, nvidia.nccl as n; print(os.path.dirname(n.__file__) if n.__file__ else list(n.__path__)[0])')"
    [[ -e "$nccl/lib/libnccl.so" ]] || ln -sf "$nccl/lib/libnccl.so.2" "$nccl/lib/libnccl.so"
    build_env+=(HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_HOME="$nccl"
      HOROVOD_CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}")
    cache=(--no-cache-dir)  # pip's wheel cache is keyed by version only: keep CPU and GPU builds apart
    [[ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]] || die "SPARKDL_GPU=1 needs the CUDA 12 toolkit (nvcc) at CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}"
  fi
  if [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("horovod"))' 2>/dev/null)" != "$HOROVOD_VERSION" ]] || (( FORCE )) || [[ "$GPU" == 1 ]]; then
    log "building Horovod $HOROVOD_VERSION with TensorFlow and Gloo$([[ "$GPU" == 1 ]] && echo ' and NCCL') (2-4 minutes on 2 cores)"
    env "${build_env[@]}" \
      "${pip[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation "${cache[@]}" "${reinstall[@]}" "horovod==$HOROVOD_VERSION" \
      || die "building Horovod failed; it needs gcc/g++ 9+, cmake (installed from constraints) and the Python headers (apt-get install python3.11-dev)"
  fi
  check_horovod_build
  echo "$want" > "$STAMP"
  log "done: $VENV is ready ($("$VENV/bin/python" --version 2>&1), horovod $HOROVOD_VERSION)"
}

main "$@"
