#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 from the installed pyspark: one master, N workers.
#   scripts/cluster.sh start     start master and workers (no-op for parts already running)
#   scripts/cluster.sh status    what runs, and the workers the master has registered
#   scripts/cluster.sh stop      stop what start started (idempotent; other processes untouched)
# Nodes that share no disk (needs root and unshare; exit code 77 where either is missing):
#   scripts/cluster.sh start --nodes N   master and N workers, each worker (with its executors,
#       Python workers and rank processes) in its own mount namespace with a private node dir
#       ($SPARKDL_CLUSTER_DIR/nodes/node-I: tmpfs, the worker's work dir and SPARK_LOCAL_DIRS)
#       and a private /tmp (tmpfs); one shared dir, visible to all, stands for NFS or /dbfs
#   scripts/cluster.sh kill-node I       SIGKILL every process of node I at once (a lost node)
#   scripts/cluster.sh start-node I      start node I again (a fresh, empty node dir and /tmp)
# Environment (defaults): SPARKDL_CLUSTER_DIR (.cluster), SPARKDL_MASTER_PORT (7077),
#   SPARKDL_MASTER_UI_PORT (8080), SPARKDL_WORKERS (2), SPARKDL_WORKER_CORES (1),
#   SPARKDL_WORKER_MEMORY (2g), SPARKDL_NODES (unset: plain workers; N: as --nodes N),
#   SPARKDL_SHARED_DIR ($SPARKDL_CLUSTER_DIR/shared). Logs and pids live in
#   $SPARKDL_CLUSTER_DIR/{logs,pids}.
# Submit to it with: spark-submit --master spark://127.0.0.1:7077 ... or scripts/submit.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/cluster.sh"
DIR="${SPARKDL_CLUSTER_DIR:-$ROOT/.cluster}"
PORT="${SPARKDL_MASTER_PORT:-7077}"
UI_PORT="${SPARKDL_MASTER_UI_PORT:-8080}"
WORKERS="${SPARKDL_WORKERS:-2}"
CORES="${SPARKDL_WORKER_CORES:-1}"
MEMORY="${SPARKDL_WORKER_MEMORY:-2g}"
NODES="${SPARKDL_NODES:-}"
HOST=127.0.0.1
MASTER_URL="spark://$HOST:$PORT"
PY="$ROOT/.venv/bin/python"
EXIT_UNSUPPORTED=77  # --nodes cannot run here (not root, no unshare, no mount namespaces)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
unsupported() { printf '[cluster] UNSUPPORTED: %s\n' "$*" >&2; exit "$EXIT_UNSUPPORTED"; }

ACTION="${1:-}"; shift || true
ARGS=()
while (($#)); do
  case "$1" in
    --nodes) NODES="${2:-}"; shift 2 || die "--nodes needs a number, for example --nodes 2" ;;
    --nodes=*) NODES="${1#*=}"; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [[ -n "$NODES" && ! "$NODES" =~ ^[1-9][0-9]*$ ]]; then
  printf '[cluster] ERROR: --nodes / SPARKDL_NODES must be a whole number >= 1, got %q\n' "$NODES" >&2
  exit 2
fi

need_namespaces() {  # checked before anything is started, so a refusal leaves nothing behind
  local uid what="scripts/cluster.sh ${ACTION}${NODES:+ --nodes $NODES}"
  uid="$(id -u)"
  [[ "$uid" == 0 ]] || unsupported "$what needs root (running as uid $uid): each node mounts its own tmpfs in a private mount namespace. Run it as root, or use 'scripts/cluster.sh start' (workers sharing this machine's disk)."
  command -v unshare > /dev/null || unsupported "$what needs unshare (util-linux) on PATH, which lacks it (PATH=$PATH). Install util-linux, or use 'scripts/cluster.sh start' (workers sharing this machine's disk)."
  command -v mount > /dev/null || unsupported "$what needs mount (util-linux) on PATH, which lacks it. Install util-linux."
  local err
  if ! err="$(unshare -m --propagation private true 2>&1)"; then
    unsupported "$what: 'unshare -m --propagation private' failed here ($err); a container needs CAP_SYS_ADMIN for mount namespaces. Use 'scripts/cluster.sh start' instead."
  fi
}
if [[ "$ACTION" == start && -n "$NODES" ]] || [[ "$ACTION" == start-node ]]; then need_namespaces; fi

[[ -x "$PY" ]] || die "no .venv: run scripts/setup.sh first"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
# Executors start Python workers with this interpreter unless a job ships its own environment.
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export SPARK_LOCAL_IP="$HOST"
mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/work"
# the shared dir a --nodes cluster was started with, so that status shows it without the variable
if [[ -n "${SPARKDL_SHARED_DIR:-}" ]]; then SHARED="$SPARKDL_SHARED_DIR"
elif [[ -f "$DIR/shared.path" ]]; then SHARED="$(cat "$DIR/shared.path")"
else SHARED="$DIR/shared"; fi

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemon() {  # name, class, args...
  local name="$1"; shift
  local pidfile="$DIR/pids/$name.pid"
  if alive "$pidfile"; then log "$name already running (pid $(cat "$pidfile"))"; return; fi
  nohup "$SPARK_HOME/bin/spark-class" "$@" > "$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  log "started $name (pid $!, log $DIR/logs/$name.log)"
}

master_workers() {  # one line per worker the master knows: id host:port state
  "$PY" - "$UI_PORT" <<'PYEOF' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    for w in json.load(r).get("workers", []):
        print(w.get("id"), f"{w.get('host')}:{w.get('port')}", w.get("state"))
PYEOF
}

registered_workers() { master_workers | awk '$3 == "ALIVE"' | wc -l; }

# ---- nodes: one mount namespace per worker ----------------------------------------------------
HOST_NS="$(readlink /proc/$$/ns/mnt)"
node_dir() { echo "$DIR/nodes/node-$1"; }
node_ns() { cat "$DIR/pids/node-$1.ns" 2>/dev/null || true; }
ns_of() { readlink "/proc/$1/ns/mnt" 2>/dev/null || true; }
ns_pids() {  # every live process whose mount namespace is $1 (zombies have none)
  { LC_ALL=C QUOTING_STYLE=literal stat -c '%N' /proc/[0-9]*/ns/mnt 2>/dev/null || true; } \
    | awk -v ns="$1" '$3 == ns { split($1, p, "/"); print p[3] }'
}
ns_is_nodes() {  # node, ns: the namespace is that node's (guards against a reused inode number)
  local pid
  [[ -n "$2" && "$2" != "$HOST_NS" ]] || return 1
  for pid in $(ns_pids "$2"); do
    grep -qzxF "SPARKDL_NODE_DIR=$(node_dir "$1")" "/proc/$pid/environ" 2>/dev/null && return 0
  done
  return 1
}
node_alive() {  # the recorded worker JVM runs, in the recorded namespace
  local pidfile="$DIR/pids/node-$1.pid"
  alive "$pidfile" && [[ -n "$(node_ns "$1")" && "$(ns_of "$(cat "$pidfile")")" == "$(node_ns "$1")" ]]
}
node_worker() { sed -n 's/.*Starting Spark worker \([0-9.]*:[0-9]*\) .*/\1/p' "$DIR/logs/node-$1.log" 2>/dev/null | tail -1; }

kill_ns() {  # ns: freeze, then SIGKILL, every process in ns, until none is left
  local ns="$1" pids
  for _ in $(seq 1 50); do
    pids="$(ns_pids "$ns")"
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086  # one kill for all; frozen first, so nobody forks in between
    kill -STOP $pids 2>/dev/null || true
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  [[ -z "$(ns_pids "$ns")" ]]
}

kill_node() {  # node, signal (KILL: lost node; TERM: a stop, KILL after 10 s)
  local i="$1" sig="$2" ns n
  ns="$(node_ns "$i")"
  [[ -n "$ns" ]] || return 0
  ns_is_nodes "$i" "$ns" || return 0  # nothing of that node is left
  n="$(ns_pids "$ns" | wc -l)"
  if [[ "$sig" == TERM ]]; then
    # shellcheck disable=SC2046
    kill -TERM $(ns_pids "$ns") 2>/dev/null || true
    for _ in $(seq 1 20); do [[ -z "$(ns_pids "$ns")" ]] && break; sleep 0.5; done
  fi
  kill_ns "$ns" || die "node-$i: processes in $ns survived SIGKILL: $(ns_pids "$ns" | tr '\n' ' ')"
  log "$( [[ "$sig" == KILL ]] && echo killed || echo stopped ) node-$i: $n process(es) in $ns"
}

start_node() {  # node
  local i="$1" pid ns nd
  nd="$(node_dir "$i")"
  if node_alive "$i"; then log "node-$i already running (pid $(cat "$DIR/pids/node-$i.pid"), $(node_ns "$i"))"; return; fi
  kill_node "$i" KILL  # leftovers of a lost node (orphaned rank processes): a new node starts clean
  mkdir -p "$nd" "$SHARED"
  realpath -m "$SHARED" > "$DIR/shared.path"
  SPARKDL_HOST_NS="$HOST_NS" SPARKDL_SHARED_DIR="$(realpath -m "$SHARED")" \
    nohup unshare -m --propagation private -- "$BASH" "$SELF" _node "$i" \
    > "$DIR/logs/node-$i.log" 2>&1 < /dev/null &
  pid=$!
  for _ in $(seq 1 100); do
    ns="$(ns_of "$pid")"
    [[ -n "$ns" && "$ns" != "$HOST_NS" ]] && break
    kill -0 "$pid" 2>/dev/null || die "node-$i did not start; see $DIR/logs/node-$i.log"
    sleep 0.05
  done
  [[ -n "$ns" && "$ns" != "$HOST_NS" ]] || die "node-$i (pid $pid) did not enter its own mount namespace"
  echo "$pid" > "$DIR/pids/node-$i.pid"
  echo "$ns" > "$DIR/pids/node-$i.ns"
  log "started node-$i (pid $pid, $ns, node dir $nd, log $DIR/logs/node-$i.log)"
}

node_exec() {  # node; runs inside the node's fresh mount namespace, becomes its worker JVM
  local i="$1" nd stage p rel keep=()
  [[ -n "${SPARKDL_HOST_NS:-}" && "$(readlink /proc/$$/ns/mnt)" != "$SPARKDL_HOST_NS" ]] \
    || die "_node $i must run under 'unshare -m' (refusing to mount over the host's /tmp)"
  nd="$(realpath -m "$(node_dir "$i")")"
  SHARED="$SPARKDL_SHARED_DIR"
  # The node's /tmp is a fresh tmpfs, staged on the node dir and moved onto /tmp. The paths this
  # node needs that live under /tmp (the repository, the cluster dir, the shared dir) are bound
  # into it first, parents before children.
  stage="$nd"
  mount -t tmpfs -o mode=1777 sparkdl-tmp "$stage"
  while IFS= read -r p; do
    [[ "$p" == /tmp/* ]] || continue
    rel="${p#/tmp/}"
    mkdir -p "$stage/$rel"
    mount --bind "$p" "$stage/$rel"
  done < <(for p in "$ROOT" "$DIR" "$SHARED"; do realpath -m "$p"; done | awk '{ print length, $0 }' | sort -n | cut -d' ' -f2-)
  mount --move "$stage" /tmp
  # shared memory is node-local too (POSIX shm, multiprocessing)
  [[ -d /dev/shm ]] && mount -t tmpfs -o mode=1777 "sparkdl-shm-$i" /dev/shm
  mount -t tmpfs -o mode=0755 "sparkdl-node-$i" "$nd"
  mkdir -p "$nd/work" "$nd/local"
  export SPARKDL_NODE="$i" SPARKDL_NODE_DIR="$(node_dir "$i")" SPARKDL_SHARED_DIR="$SHARED"
  export SPARK_LOCAL_DIRS="$nd/local" TMPDIR=/tmp
  unset SPARKDL_HOST_NS
  echo "[cluster] node-$i: $(readlink /proc/$$/ns/mnt), node dir $nd, private /tmp, shared $SHARED" >&2
  exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host "$HOST" --cores "$CORES" --memory "$MEMORY" --webui-port 0 \
    --work-dir "$nd/work" "$MASTER_URL"
}

node_ids() {  # the nodes started from $DIR, in order
  local f
  for f in "$DIR"/pids/node-*.ns; do [[ -e "$f" ]] && basename "$f" .ns | sed 's/^node-//'; done | sort -n
}

wait_registered() {  # count: the master lists that many ALIVE workers
  for _ in $(seq 1 90); do
    [[ "$(registered_workers)" -ge "$1" ]] && return 0
    sleep 1
  done
  die "the master did not register $1 workers within 90 s; see $DIR/logs"
}

wait_node_registered() {  # node
  local addr=""
  for _ in $(seq 1 90); do
    addr="$(node_worker "$1")"
    [[ -n "$addr" ]] && master_workers | awk -v a="$addr" '$2 == a && $3 == "ALIVE" { ok = 1 } END { exit !ok }' && return 0
    node_alive "$1" || die "node-$1 exited while registering; see $DIR/logs/node-$1.log"
    sleep 1
  done
  die "the master did not register node-$1 ($addr) within 90 s; see $DIR/logs/node-$1.log"
}

node_arg() {  # the I of kill-node I / start-node I
  [[ "${ARGS[0]:-}" =~ ^[1-9][0-9]*$ ]] || { printf '[cluster] ERROR: usage: %s %s I (a node number >= 1), got %q\n' "$0" "$ACTION" "${ARGS[0]:-}" >&2; exit 2; }
  echo "${ARGS[0]}"
}

# ---- actions ----------------------------------------------------------------------------------
start() {
  start_daemon master org.apache.spark.deploy.master.Master \
    --host "$HOST" --port "$PORT" --webui-port "$UI_PORT"
  if [[ -n "$NODES" ]]; then
    for i in $(seq 1 "$NODES"); do start_node "$i"; done
    wait_registered "$NODES"
    log "up: $MASTER_URL with $NODES nodes (UI http://$HOST:$UI_PORT)"
    echo "master $MASTER_URL"
    echo "shared dir $SHARED"
    for i in $(seq 1 "$NODES"); do echo "node-$i $(node_ns "$i") $(node_dir "$i")"; done
    return
  fi
  for i in $(seq 1 "$WORKERS"); do
    start_daemon "worker-$i" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores "$CORES" --memory "$MEMORY" --webui-port 0 \
      --work-dir "$DIR/work/worker-$i" "$MASTER_URL"
  done
  wait_registered "$WORKERS"
  log "up: $MASTER_URL with $WORKERS workers (UI http://$HOST:$UI_PORT)"
}

stop() {
  local pidfile pid i
  for i in $(node_ids); do
    kill_node "$i" TERM
    rm -f "$DIR/pids/node-$i.pid" "$DIR/pids/node-$i.ns"
  done
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
  local pidfile any=0 name i ns n
  for pidfile in "$DIR"/pids/*.pid; do
    [[ -e "$pidfile" ]] || continue
    name="$(basename "$pidfile" .pid)"
    [[ "$name" == node-* ]] && continue
    any=1
    if alive "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"
    else echo "$name: not running (stale pid file)"; fi
  done
  for i in $(node_ids); do
    any=1
    ns="$(node_ns "$i")"
    n=0; ns_is_nodes "$i" "$ns" && n="$(ns_pids "$ns" | wc -l)"
    if node_alive "$i"; then
      echo "node-$i: running (pid $(cat "$DIR/pids/node-$i.pid"), $ns, $n process(es), worker $(node_worker "$i"), node dir $(node_dir "$i"))"
    else
      echo "node-$i: not running ($ns, $n process(es) left)"
    fi
  done
  [[ $any == 1 ]] || echo "nothing started from $DIR"
  [[ -z "$(node_ids)" ]] || echo "shared dir $SHARED"
  echo "master $MASTER_URL: $(registered_workers) worker(s) registered"
  local names=""  # host:port -> node-I, from each node's log
  for i in $(node_ids); do names+="$(node_worker "$i") node-$i"$'\n'; done
  master_workers | awk -v names="$names" '
    BEGIN { n = split(names, l, "\n"); for (k = 1; k <= n; k++) { split(l[k], f, " "); node[f[1]] = f[2] } }
    { print "  " $0 ($2 in node ? " (" node[$2] ")" : "") }'
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill-node)
    I="$(node_arg)"
    [[ -n "$(node_ns "$I")" ]] || die "node-$I was not started from $DIR (no $DIR/pids/node-$I.ns)"
    ns_is_nodes "$I" "$(node_ns "$I")" || { log "node-$I: nothing left to kill in $(node_ns "$I")"; exit 0; }
    kill_node "$I" KILL ;;
  start-node)
    I="$(node_arg)"
    start_daemon master org.apache.spark.deploy.master.Master \
      --host "$HOST" --port "$PORT" --webui-port "$UI_PORT"
    start_node "$I"
    wait_node_registered "$I"
    log "node-$I up: worker $(node_worker "$I") registered with $MASTER_URL" ;;
  _node) node_exec "${ARGS[0]}" ;;
  *) echo "usage: $0 start [--nodes N]|stop|status|kill-node I|start-node I" >&2; exit 2 ;;
esac
