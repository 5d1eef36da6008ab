"""A driver for the simulated multi-node cluster: where can each node's tasks see files?

Run as its own process (the test process already owns a local SparkSession)::

    .venv/bin/python tests/integration/multinode_probe.py --master spark://127.0.0.1:7277 \
        --executors 2 --cluster-dir /tmp/c --token abc

One barrier task per executor (so one per node) writes a marker named after ``token`` into its
node dir (``$SPARKDL_NODE_DIR``), into ``/tmp`` and into the shared dir, and starts a detached
``sleep`` in a session of its own (a stand-in for an orphaned rank process). After a barrier,
each task lists the markers it can see in every node dir, ``/tmp`` and the shared dir. The
driver lists the same places and prints one JSON line: ``{"tasks": [...], "driver": {...}}``.
It then keeps its executors until its stdin closes, so that a test can kill a node under a live
application.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("multinode_probe")
_QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _listing(places: list[str], token: str) -> dict[str, list[str]]:
    """The markers (names holding ``token``) visible in each place."""
    seen = {}
    for place in places:
        try:
            seen[place] = sorted(n for n in os.listdir(place) if n.startswith(f"marker-{token}-"))
        except FileNotFoundError:
            seen[place] = []
    return seen


def _probe(places: list[str], shared: str, token: str, orphan_s: int):
    """The barrier task: write markers, start an orphan, sync, list what this node sees."""

    def task(_rows):
        import subprocess

        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        node = os.environ.get("SPARKDL_NODE", "?")
        node_dir = os.environ.get("SPARKDL_NODE_DIR", "")
        name = f"marker-{token}-node-{node}"
        for place in (node_dir, "/tmp", shared):
            if place:
                Path(place, name).write_text(node)
        orphan = subprocess.Popen(
            ["sleep", str(orphan_s)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ctx.barrier()  # every node has written before anyone lists
        yield json.dumps(
            {
                "node": node,
                "node_dir": node_dir,
                "partition": ctx.partitionId(),
                "pid": os.getpid(),
                "ns": os.readlink("/proc/self/ns/mnt"),
                "orphan_pid": orphan.pid,
                "listing": _listing(places, token),
            }
        )

    return task


def main() -> int:
    """Run the probe job and print its JSON report; exit when stdin closes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--master", required=True)
    ap.add_argument("--executors", type=int, default=2)
    ap.add_argument("--cluster-dir", required=True, type=Path)
    ap.add_argument("--shared", type=Path, help="default: CLUSTER_DIR/shared")
    ap.add_argument("--token", required=True)
    ap.add_argument("--orphan-s", type=int, default=600)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="[probe] %(message)s", stream=sys.stderr)

    from pyspark.sql import SparkSession

    n = args.executors
    shared = str(args.shared or args.cluster_dir / "shared")
    nodes = [str(args.cluster_dir / "nodes" / f"node-{i}") for i in range(1, n + 1)]
    places = [*nodes, "/tmp", shared]
    spark = (
        SparkSession.builder.master(args.master)
        .appName("sparkdl-multinode-probe")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.executor.memory", "512m")
        .config("spark.executor.cores", "1")
        .config("spark.cores.max", str(n))
        .config("spark.pyspark.python", sys.executable)
        .config("spark.python.worker.reuse", "true")
        # the probe's JVMs only route a tiny job: C1 alone and one GC thread start them faster
        .config("spark.driver.extraJavaOptions", _QUICK_JVM)
        .config("spark.executor.extraJavaOptions", _QUICK_JVM)
        .getOrCreate()
    )
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    deadline = time.monotonic() + 120
    # the driver counts as one entry; a barrier stage needs every slot registered
    while sc._jsc.sc().getExecutorMemoryStatus().size() < n + 1:
        if time.monotonic() > deadline:
            log.error(
                "only %d of %d executors registered",
                sc._jsc.sc().getExecutorMemoryStatus().size() - 1,
                n,
            )
            return 1
        time.sleep(0.2)
    log.info("%d executors registered; probing", n)
    rows = (
        sc.parallelize(range(n), n)
        .barrier()
        .mapPartitions(_probe(places, shared, args.token, args.orphan_s))
        .collect()
    )
    report = {
        "tasks": [json.loads(r) for r in rows],
        "driver": {"ns": os.readlink("/proc/self/ns/mnt"), "listing": _listing(places, args.token)},
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # hold the application (and its executors) until told to finish
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
