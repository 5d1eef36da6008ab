#!/usr/bin/env bash
# Run a command (a whole job: driver, executors, ranks) in a private network namespace whose
# loopback is rate-limited, standing in for the network between real nodes:
#   scripts/slownet.sh --rate 1gbit -- .venv/bin/python jobs/train_horovod.py -c conf/local.yaml
#   scripts/slownet.sh --rate 10gbit -- ...      scripts/slownet.sh --rate off -- ...
# --rate: off (the namespace's own loopback, unthrottled), or <N>gbit / <N>mbit (a token-bucket
# filter, tc tbf, on that loopback: every byte between processes inside shares it). Only the
# namespace's loopback exists inside: nothing outside (the host's 127.0.0.1 services, other
# hosts) can be reached, and the host's loopback is untouched. SPARK_LOCAL_IP=127.0.0.1 is set
# (the host name resolves to an address the namespace does not have).
# Needs root, unshare (util-linux), ip and tc (iproute2); where one is missing, or the kernel
# refuses a network namespace, it says so on stderr ("[slownet] UNSUPPORTED: ...") and exits 77
# without running the command. Otherwise it exits with the command's exit code.
set -euo pipefail
EXIT_UNSUPPORTED=77

usage() {
  echo "usage: $0 --rate off|<N>gbit|<N>mbit -- command [args...]" >&2
  exit 2
}
unsupported() {
  echo "[slownet] UNSUPPORTED: $*" >&2
  exit "$EXIT_UNSUPPORTED"
}

rate=""
while (($#)); do
  case "$1" in
    --rate) rate="${2:-}"; shift 2 || usage ;;
    --rate=*) rate="${1#--rate=}"; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
(($#)) || usage
case "$rate" in
  off) ;;
  [1-9]*gbit | [1-9]*mbit)
    [[ "$rate" =~ ^[1-9][0-9]*(gbit|mbit)$ ]] || {
      echo "[slownet] --rate $rate: give off, or a whole number of gbit or mbit (1gbit, 10gbit, 500mbit)" >&2
      exit 2
    } ;;
  *)
    echo "[slownet] --rate '${rate}': give off, or a whole number of gbit or mbit (1gbit, 10gbit, 500mbit)" >&2
    exit 2 ;;
esac

[[ "$(id -u)" == 0 ]] || unsupported "a private network namespace with a rate-limited loopback needs root (unshare -n, tc); this runs as $(id -un)"
command -v unshare >/dev/null 2>&1 || unsupported "unshare (util-linux) is not installed"
command -v ip >/dev/null 2>&1 || unsupported "ip (iproute2) is not installed"
command -v tc >/dev/null 2>&1 || unsupported "tc (iproute2) is not installed"
unshare -n true 2>/dev/null || unsupported "the kernel refused a network namespace (unshare -n failed)"

# A token bucket must hold at least one packet (loopback MTU 64 KiB) and a few ms of the rate:
# 256 KiB at 1 Gbit/s (as checked in shared/SIMULATION.md), scaled with the rate above it.
burst_kb=256
if [[ "$rate" != off ]]; then
  n="${rate%bit}"; n="${n%[gm]}"
  [[ "$rate" == *gbit ]] && ((n > 1)) && burst_kb=$((256 * n))
fi

export SLOWNET_RATE="$rate" SLOWNET_BURST="${burst_kb}kb" SPARK_LOCAL_IP=127.0.0.1
exec unshare -n -- bash -c '
  set -euo pipefail
  ip link set lo up
  if [[ "$SLOWNET_RATE" != off ]]; then
    tc qdisc add dev lo root tbf rate "$SLOWNET_RATE" burst "$SLOWNET_BURST" latency 50ms || {
      echo "[slownet] UNSUPPORTED: tc could not add a tbf qdisc (sch_tbf missing?)" >&2; exit 77; }
  fi
  exec "$@"
' slownet "$@"
