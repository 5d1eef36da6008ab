"""Run by test_barrier_launch: local-cluster with a fake GPU discovery script; print JSON.

Each of 2 executors owns one "GPU" from a script that lists addresses 0-2; a stand-in rank
function reports the CUDA_VISIBLE_DEVICES and HOROVOD_GPU_OPERATIONS its process saw, and
preflight's verdict on this CPU-only Horovod build is reported too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sparkdl.config import LaunchConfig, LocalClusterConfig, SparkConfig
from sparkdl.launch import BarrierLauncher
from sparkdl.launch.preflight import preflight
from sparkdl.session import build_session
from tests.integration.rank_functions import rank_and_env


def main(script: str) -> None:
    """Start the GPU-configured local cluster, launch 2 ranks, print what they saw."""
    launch = LaunchConfig(num_workers=2, start_timeout_s=120)
    spark = build_session(
        SparkConfig(
            profile="local-cluster",
            local_cluster=LocalClusterConfig(executors=2, cores_per_executor=1, memory_mb=1024),
            log_level="ERROR",
        ),
        launch=launch,
        extra_conf={
            "spark.worker.resource.gpu.amount": "3",
            "spark.worker.resource.gpu.discoveryScript": script,
            "spark.executor.resource.gpu.amount": "1",
            "spark.task.resource.gpu.amount": "1",
        },
    )
    try:
        try:
            preflight(spark, launch=launch)
            verdict = "passed"
        except RuntimeError as exc:
            verdict = str(exc)
        envs = BarrierLauncher(spark, config=launch).run_all(rank_and_env)
    finally:
        spark.stop()
    print(json.dumps({"preflight": verdict, "ranks": envs}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main(sys.argv[1])
