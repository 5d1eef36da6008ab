#!/bin/sh
# The executors' Python on spark:// and k8s:// in client mode. scripts/submit.sh ships this file
# as sparkdl-python-<stack hash> with --files, beside the packed environment
# sparkdl-env-<stack hash>.pack, and sets spark.pyspark.python=./sparkdl-python-<stack hash>.
# Every Python worker of an executor starts here, in the executor's working directory.
#
# The environment is unpacked once per node and stack, not once per executor and application:
# into the node's cache, SPARKDL_ENV_CACHE (spark.executorEnv.SPARKDL_ENV_CACHE) or, on a
# standalone worker (working directory <worker dir>/app-<id>/<n>), <worker dir>/.sparkdl-env;
# elsewhere (a fresh container) the executor's own directory. Then:
#   - the first worker unpacks it into a temporary folder under an exclusive lock and renames it
#     into place; the others wait on the lock and find it there;
#   - each worker deletes its executor's copy of the archive (hundreds of MB) and marks the
#     environment used (a fresh file, so Spark's worker cleanup, spark.worker.cleanup.*, keeps it
#     while it is in use and removes it once it is not);
#   - each worker holds a shared lock on the environment while it runs; an unpacking of a newer
#     stack removes the node's older environments that no worker holds and that were not used in
#     the last SPARKDL_ENV_KEEP_MINUTES (default 1440).
# Without flock(1) the unpacking is not serialised and nothing is removed.
set -eu
hash="${0##*/sparkdl-python-}"
case "$hash" in
  "" | */* | *[!0-9a-f]*)
    echo "sparkdl: $0 must be named sparkdl-python-<stack hash> (scripts/submit.sh names it)" >&2
    exit 2 ;;
esac
pack="./sparkdl-env-$hash.pack"
cache="${SPARKDL_ENV_CACHE:-}"
if [ -z "$cache" ]; then
  here="$(pwd -P)"
  case "${here%/*}" in
    */app-*) cache="${here%/*/*}/.sparkdl-env" ;;
    *) cache="$here" ;;
  esac
fi
env="$cache/sparkdl-env-$hash"
has_flock=false
command -v flock >/dev/null 2>&1 && has_flock=true

if [ ! -x "$env/bin/python" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/.sparkdl-env-$hash.lock"
  $has_flock && flock 9
  if [ ! -x "$env/bin/python" ]; then
    if [ ! -f "$pack" ]; then
      echo "sparkdl: $env is not unpacked and $(pwd -P)/${pack#./} is missing: resubmit with" \
        "scripts/submit.sh, which ships it with --files" >&2
      exit 2
    fi
    $has_flock && rm -rf "$cache/.sparkdl-env-$hash.tmp."*  # left by a killed unpacking
    tmp="$cache/.sparkdl-env-$hash.tmp.$$"
    mkdir "$tmp"
    started="$(date +%s)"
    tar -xzf "$pack" -C "$tmp"
    if [ -e "$env" ]; then rm -rf "$tmp"; else mv "$tmp" "$env"; fi  # (raced without flock)
    echo "sparkdl: unpacked the environment into $env in $(($(date +%s) - started)) s" >&2
    if $has_flock; then
      keep="${SPARKDL_ENV_KEEP_MINUTES:-1440}"
      for old in "$cache"/sparkdl-env-*; do
        [ "$old" = "$env" ] || [ ! -d "$old" ] && continue
        [ -n "$(find "$old/.sparkdl-used" -mmin "-$keep" 2>/dev/null)" ] && continue
        (
          exec 8>"$old.use.lock"
          flock -n -x 8 || exit 0
          # renamed first: a worker that looks finds the whole environment or none
          gone="${old%/*}/.${old##*/}.tmp.gone.$$"
          mv "$old" "$gone" && rm -rf "$gone"
          rm -f "$old.use.lock" "${old%/*}/.${old##*/}.lock"
          echo "sparkdl: removed $old (no worker used it in $keep minutes)" >&2
        )
      done
    fi
  fi
  exec 9>&-
fi
rm -f "$pack"
: >"$env/.sparkdl-used"
exec 8>"$env.use.lock"
$has_flock && flock -s 8
exec "$env/bin/python" "$@"
