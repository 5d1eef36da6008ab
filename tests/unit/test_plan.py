"""Rank planning from barrier task addresses, and the Horovod environment of a rank."""

from __future__ import annotations

import pytest

from sparkdl.launch.plan import (
    describe_plan,
    horovod_env,
    host_of,
    plan_ranks,
    rank_runtime_env,
    threads_per_rank,
)


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("10.0.0.5:4012", "10.0.0.5"),
        ("node-1.example:7077", "node-1.example"),
        ("[::1]:80", "::1"),
        ("solo", "solo"),
    ],
)
def test_host_of(address: str, host: str) -> None:
    assert host_of(address) == host


def test_single_host_two_tasks() -> None:
    slots = plan_ranks(["127.0.0.1:1", "127.0.0.1:2"])
    assert [(s.rank, s.local_rank, s.local_size, s.cross_rank, s.cross_size) for s in slots] == [
        (0, 0, 2, 0, 1),
        (1, 1, 2, 0, 1),
    ]
    assert {s.size for s in slots} == {2}


def test_interleaved_hosts_group_ranks_by_host() -> None:
    # Partition order a, b, a, b: ranks go host by host, partition 0 stays rank 0.
    slots = plan_ranks(["a:1", "b:1", "a:2", "b:2"])
    by_partition = {s.partition: (s.hostname, s.rank, s.local_rank, s.cross_rank) for s in slots}
    assert by_partition == {
        0: ("a", 0, 0, 0),
        2: ("a", 1, 1, 0),
        1: ("b", 2, 0, 1),
        3: ("b", 3, 1, 1),
    }
    assert all(s.cross_size == 2 and s.local_size == 2 for s in slots)


def test_uneven_hosts_cross_sizes() -> None:
    slots = plan_ranks(["a:1", "a:2", "a:3", "b:1"])
    local_rank_0 = [s for s in slots if s.local_rank == 0]
    assert sorted(s.hostname for s in local_rank_0) == ["a", "b"]
    assert all(s.cross_size == 2 for s in local_rank_0)
    assert all(s.cross_size == 1 for s in slots if s.local_rank > 0)
    assert sorted(s.rank for s in slots) == [0, 1, 2, 3]


def test_empty_plan_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one task address"):
        plan_ranks([])


def test_horovod_env_for_rank() -> None:
    slot = plan_ranks(["a:1", "b:1"])[1]
    env = horovod_env(
        slot,
        rendezvous_addr="10.1.1.1",
        rendezvous_port=5555,
        iface="eth0",
        start_timeout_s=45.5,
        threads=3,
    )
    assert env["HOROVOD_RANK"] == "1"
    assert env["HOROVOD_SIZE"] == "2"
    assert env["HOROVOD_LOCAL_RANK"] == "0"
    assert env["HOROVOD_CROSS_RANK"] == "1"
    assert env["HOROVOD_CROSS_SIZE"] == "2"
    assert env["HOROVOD_HOSTNAME"] == "b"
    assert env["HOROVOD_GLOO_RENDEZVOUS_ADDR"] == "10.1.1.1"
    assert env["HOROVOD_GLOO_RENDEZVOUS_PORT"] == "5555"
    assert env["HOROVOD_GLOO_IFACE"] == "eth0"
    assert env["HOROVOD_GLOO_TIMEOUT_SECONDS"] == "45"
    assert env["HOROVOD_CONTROLLER"] == env["HOROVOD_CPU_OPERATIONS"] == "gloo"
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "3"
    assert all(isinstance(v, str) for v in env.values())


def test_threads_per_rank() -> None:
    assert threads_per_rank(task_cpus=4, requested=None) == 4
    assert threads_per_rank(task_cpus=4, requested=1) == 1
    assert threads_per_rank(task_cpus=0, requested=None) == 1


def test_describe_plan() -> None:
    assert dict(describe_plan(plan_ranks(["a:1", "b:1", "a:2"]))) == {"a": [0, 1], "b": [2]}


def test_rank_runtime_env_defaults_and_user_values_win() -> None:
    env = rank_runtime_env(user_env={}, log_level="3")
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    mine = rank_runtime_env(
        user_env={"TF_CPU_ALLOCATOR_USE_BFC": "false", "HOROVOD_CYCLE_TIME": "2"}, log_level="2"
    )
    assert mine["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
    assert mine["HOROVOD_CYCLE_TIME"] == "2"
