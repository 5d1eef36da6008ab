"""Real barrier stages on local[2]: Horovod ranks over Gloo, results, and failures."""

from __future__ import annotations

import pytest

from sparkdl.config import LaunchConfig
from sparkdl.launch import BarrierLauncher, LaunchError
from sparkdl.launch.smoke import allreduce_check, expected_sums
from tests.integration.rank_functions import exit_on_rank, fail_on_rank, rank_and_env

pytestmark = pytest.mark.integration


def test_two_ranks_allreduce_exact_sums(spark) -> None:
    ranks = BarrierLauncher(spark, config=LaunchConfig(num_workers=2)).run_all(
        allreduce_check, 5, 3
    )
    want = expected_sums(size=2, tensor_size=5, rounds=3)
    # Rank r contributes (r+1)*[0..4] + k in round k, so the sums are 3*i + 2*k.
    assert want == [[3.0 * i + 2.0 * k for i in range(5)] for k in range(3)]
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:
        assert r["size"] == 2
        assert r["local_size"] == 2
        assert r["sums"] == want
        assert r["broadcast"] == 100.0  # rank 0's value, on both ranks
        assert r["gloo"] is True
    assert sorted(r["local_rank"] for r in ranks) == [0, 1]


def test_run_returns_rank_zero_result_and_env(spark) -> None:
    launcher = BarrierLauncher(spark, config=LaunchConfig(num_workers=2, threads_per_worker=1))
    env = launcher.run(rank_and_env)
    assert env["HOROVOD_RANK"] == "0"
    assert env["HOROVOD_SIZE"] == "2"
    assert env["HOROVOD_GLOO_IFACE"] == "lo"
    assert env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert [e["HOROVOD_RANK"] for e in launcher.run_all(rank_and_env)] == ["0", "1"]


def test_exception_on_a_rank_fails_the_launch_with_its_output(spark) -> None:
    launcher = BarrierLauncher(spark, config=LaunchConfig(num_workers=2))
    with pytest.raises(LaunchError) as info:
        launcher.run(fail_on_rank, 1)
    message = str(info.value)
    assert "a Horovod rank failed" in message
    assert "about to fail on purpose on rank 1" in message
    assert "ValueError: injected failure on rank 1" in message


def test_hard_exit_reports_status(spark) -> None:
    with pytest.raises(LaunchError, match="exited with status 7"):
        BarrierLauncher(spark, config=LaunchConfig(num_workers=2)).run(exit_on_rank, 0, 7)


def test_more_workers_than_slots_is_refused_before_any_job(spark) -> None:
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    with pytest.raises(
        RuntimeError, match=r"launch.num_workers=3 but master local\[2\] runs at most 2"
    ):
        BarrierLauncher(spark, config=LaunchConfig(num_workers=3))
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before


def test_session_keeps_working_after_a_failed_launch(spark) -> None:
    with pytest.raises(LaunchError):
        BarrierLauncher(spark, config=LaunchConfig(num_workers=2)).run(fail_on_rank, 0)
    assert spark.range(100).selectExpr("sum(id)").first()[0] == 4950
    assert (
        BarrierLauncher(spark, config=LaunchConfig(num_workers=1)).run(rank_and_env)["HOROVOD_SIZE"]
        == "1"
    )


@pytest.mark.cluster
def test_spark_assigned_gpus_become_cuda_visible_devices(tmp_path, repo) -> None:
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "gpus.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0", "1", "2"]}\'\n')
    script.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.gpu_assignment_probe", str(script)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(repo)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    ranks = report["ranks"]
    assert [r["HOROVOD_RANK"] for r in ranks] == ["0", "1"]
    for r in ranks:
        assert r["CUDA_VISIBLE_DEVICES"] in {"0", "1", "2"}  # exactly one GPU: the task's own
        assert r["HOROVOD_GPU_OPERATIONS"] == "NCCL"
    # This machine's Horovod is the CPU build: preflight must refuse GPU training with the fix.
    assert "built without NCCL" in report["preflight"]
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in report["preflight"]


def test_launch_env_reaches_every_rank(spark) -> None:
    from types import MappingProxyType

    from tests.integration.rank_functions import env_value

    cfg = LaunchConfig(num_workers=2, env=MappingProxyType({"HOROVOD_FUSION_THRESHOLD": "1048576"}))
    assert (
        BarrierLauncher(spark, config=cfg).run_all(env_value, "HOROVOD_FUSION_THRESHOLD")
        == ["1048576"] * 2
    )


def test_ranks_use_the_bfc_cpu_allocator_unless_launch_env_says_no(spark) -> None:
    from types import MappingProxyType

    from tests.integration.rank_functions import cpu_allocator_stats

    # Where TensorFlow turns on its oneDNN ops (seen on an AMD EPYC machine, not on the Intel
    # ones before), the CPU device keeps allocation statistics without BFC too: both launches
    # turn them off, so BFC is the only thing that differs.
    no_onednn = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    on = LaunchConfig(num_workers=2, env=MappingProxyType(no_onednn))
    stats = BarrierLauncher(spark, config=on).run_all(cpu_allocator_stats)
    assert len(stats) == 2
    for s in stats:  # BFC keeps statistics; the 4 MB tensor was live when they were read
        assert s is not None and s["peak"] >= 4 << 20
    env = MappingProxyType({**no_onednn, "TF_CPU_ALLOCATOR_USE_BFC": "false"})
    off = LaunchConfig(num_workers=1, env=env)
    assert BarrierLauncher(spark, config=off).run_all(cpu_allocator_stats) == [None]
