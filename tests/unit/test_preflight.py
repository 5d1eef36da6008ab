"""Preflight checks on confs and slots: each refusal names the conf key and the fix."""

from __future__ import annotations

import time

import pytest

from sparkdl.config import LaunchConfig
from sparkdl.launch.preflight import ALLOW_TLS, check_confs, wait_for_slots


def test_plain_cpu_session_passes() -> None:
    assert check_confs({"spark.dynamicAllocation.enabled": "false"}) is False


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        ({"spark.dynamicAllocation.enabled": "true"}, "spark.dynamicAllocation.enabled is true"),
        ({"spark.ssl.enabled": "true"}, ALLOW_TLS),
        (
            {"spark.executor.resource.gpu.amount": "1"},
            "spark.task.resource.gpu.amount is not set",
        ),
    ],
)
def test_refusals_name_the_conf(conf: dict[str, str], fragment: str) -> None:
    with pytest.raises(RuntimeError, match=fragment.replace(".", r"\.")):
        check_confs(conf)


def test_tls_with_explicit_opt_out_passes() -> None:
    assert check_confs({"spark.ssl.enabled": "true", ALLOW_TLS: "true"}) is False


def test_gpus_per_task_are_detected() -> None:
    conf = {"spark.executor.resource.gpu.amount": "2", "spark.task.resource.gpu.amount": "1"}
    assert check_confs(conf) is True


def test_slots_that_arrive_in_time_pass() -> None:
    counts = iter([0, 1, 2, 2])
    assert (
        wait_for_slots(
            lambda: next(counts), launch=LaunchConfig(num_workers=2), master="m", wait_s=10
        )
        == 2
    )


def test_too_few_slots_fail_within_the_wait() -> None:
    start = time.monotonic()
    with pytest.raises(
        RuntimeError, match=r"launch.num_workers=4 but the cluster \(spark://h:7077\) offers 2"
    ):
        wait_for_slots(
            lambda: 2, launch=LaunchConfig(num_workers=4), master="spark://h:7077", wait_s=2
        )
    assert time.monotonic() - start < 5
