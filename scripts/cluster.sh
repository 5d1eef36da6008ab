#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 from the installed pyspark: one master, N workers.
#   scripts/cluster.sh start     start master and workers (no-op for parts already running)
#   scripts/cluster.sh status    what runs, and the workers the master has registered
#   scripts/cluster.sh stop      stop what start started (idempotent; other processes untouched)
# Environment (defaults): SPARKDL_CLUSTER_DIR (.cluster), SPARKDL_MASTER_PORT (7077),
#   SPARKDL_MASTER_UI_PORT (8080), SPARKDL_WORKERS (2), SPARKDL_WORKER_CORES (1),
#   SPARKDL_WORKER_MEMORY (2g). Logs and pids live in $SPARKDL_CLUSTER_DIR/{logs,pids}.
# Submit to it with: spark-submit --master spark://127.0.0.1:7077 ... or scripts/submit.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${SPARKDL_CLUSTER_DIR:-$ROOT/.cluster}"
PORT="${SPARKDL_MASTER_PORT:-7077}"
UI_PORT="${SPARKDL_MASTER_UI_PORT:-8080}"
WORKERS="${SPARKDL_WORKERS:-2}"
CORES="${SPARKDL_WORKER_CORES:-1}"
MEMORY="${SPARKDL_WORKER_MEMORY:-2g}"
HOST=127.0.0.1
MASTER_URL="spark://$HOST:$PORT"
PY="$ROOT/.venv/bin/python"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x "$PY" ]] || die "no .venv: run scripts/setup.sh first"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
# Executors start Python workers with this interpreter unless a job ships its own environment.
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export SPARK_LOCAL_IP="$HOST"
mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/work"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemon() {  # name, class, args...
  local name="$1"; shift
  local pidfile="$DIR/pids/$name.pid"
  if alive "$pidfile"; then log "$name already running (pid $(cat "$pidfile"))"; return; fi
  nohup "$SPARK_HOME/bin/spark-class" "$@" > "$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  log "started $name (pid $!, log $DIR/logs/$name.log)"
}

registered_workers() {
  "$PY" - "$UI_PORT" <<'PYEOF' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    print(sum(w.get("state") == "ALIVE" for w in json.load(r).get("workers", [])))
PYEOF
}

start() {
  start_daemon master org.apache.spark.deploy.master.Master \
    --host "$HOST" --port "$PORT" --webui-port "$UI_PORT"
  for i in $(seq 1 "$WORKERS"); do
    start_daemon "worker-$i" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores "$CORES" --memory "$MEMORY" --webui-port 0 \
      --work-dir "$DIR/work/worker-$i" "$MASTER_URL"
  done
  for _ in $(seq 1 90); do
    [[ "$(registered_workers)" -ge "$WORKERS" ]] && { log "up: $MASTER_URL with $WORKERS workers (UI http://$HOST:$UI_PORT)"; return; }
    sleep 1
  done
  die "the master did not register $WORKERS workers within 90 s; see $DIR/logs"
}

stop() {
  local pidfile pid
  for pidfile in "$DIR"/pids/*.pid; do
    [[ -e "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      # spark-class execs java, so the recorded pid is the daemon's JVM itself
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
    rm -f "$pidfile"
  done
}

status() {
  local pidfile any=0
  for pidfile in "$DIR"/pids/*.pid; do
    [[ -e "$pidfile" ]] || continue
    any=1
    if alive "$pidfile"; then echo "$(basename "$pidfile" .pid): running (pid $(cat "$pidfile"))"
    else echo "$(basename "$pidfile" .pid): not running (stale pid file)"; fi
  done
  [[ $any == 1 ]] || echo "nothing started from $DIR"
  echo "master $MASTER_URL: $(registered_workers) worker(s) registered"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
