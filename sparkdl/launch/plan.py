"""Pure rank planning: from the barrier tasks' executor addresses to Horovod ranks and env vars.

Nothing here touches Spark, Horovod or the network, so it is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sparkdl.errors import BadInputError


@dataclass(frozen=True)
class RankSlot:
    """Where one barrier task sits in the Horovod world.

    Attribute names match Horovod's ``SlotInfo`` so a plan can initialise its rendezvous server.
    """

    partition: int
    hostname: str
    rank: int
    local_rank: int
    cross_rank: int
    size: int
    local_size: int
    cross_size: int


def host_of(address: str) -> str:
    """Return the host part of a Spark task address (``host:port`` or ``[v6]:port``).

    Examples
    --------
    >>> host_of("10.0.0.5:40123")
    '10.0.0.5'
    >>> host_of("[::1]:7077")
    '::1'
    """
    if address.startswith("["):
        return address[1 : address.index("]")]
    host, _, _port = address.rpartition(":")
    return host or address


def plan_ranks(addresses: Sequence[str]) -> list[RankSlot]:
    """Assign Horovod ranks to barrier tasks, grouping tasks on the same host.

    Hosts are ordered by their lowest partition id and, on each host, local ranks follow
    partition ids; ranks are numbered host by host (as Horovod's own launcher does), so
    partition 0 is always rank 0. Cross ranks number the hosts that have a given local rank.

    Parameters
    ----------
    addresses : sequence of str
        ``BarrierTaskContext.getTaskInfos()[i].address`` for partition ``i``.

    Returns
    -------
    list of RankSlot
        One slot per partition, indexed by partition id.

    Examples
    --------
    >>> [(s.rank, s.local_rank, s.cross_rank) for s in plan_ranks(["a:1", "b:2", "a:3"])]
    [(0, 0, 0), (2, 0, 1), (1, 1, 0)]
    """
    if not addresses:
        raise BadInputError("plan_ranks needs at least one task address, got none")
    by_host: dict[str, list[int]] = {}
    for partition, address in enumerate(addresses):
        by_host.setdefault(host_of(address), []).append(partition)
    size = len(addresses)
    hosts_with_local_rank: dict[int, list[str]] = {}
    for host, partitions in by_host.items():
        for local_rank in range(len(partitions)):
            hosts_with_local_rank.setdefault(local_rank, []).append(host)
    slots: dict[int, RankSlot] = {}
    rank = 0
    for host, partitions in by_host.items():
        for local_rank, partition in enumerate(partitions):
            peers = hosts_with_local_rank[local_rank]
            slots[partition] = RankSlot(
                partition=partition,
                hostname=host,
                rank=rank,
                local_rank=local_rank,
                cross_rank=peers.index(host),
                size=size,
                local_size=len(partitions),
                cross_size=len(peers),
            )
            rank += 1
    return [slots[p] for p in range(size)]


def horovod_env(
    slot: RankSlot,
    *,
    rendezvous_addr: str,
    rendezvous_port: int,
    iface: str,
    start_timeout_s: float,
    threads: int,
    stall_timeout_s: float = 300.0,
    cpu_operations: str = "gloo",
) -> dict[str, str]:
    """Return the environment that makes a process Horovod rank ``slot.rank`` over Gloo.

    Parameters
    ----------
    slot : RankSlot
        This task's place in the plan.
    rendezvous_addr, rendezvous_port : str, int
        The driver's Horovod rendezvous server.
    iface : str
        The network interface Gloo uses (the one carrying this executor's address).
    start_timeout_s : float
        How long Gloo waits for its peers before failing.
    threads : int
        Intra-op threads for TensorFlow and OpenMP in this rank.
    stall_timeout_s : float
        Horovod shuts a rank down when a collective waits this long for a stalled peer.
    cpu_operations : str
        Horovod's CPU collective backend.

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> env = horovod_env(plan_ranks(["h:1"])[0], rendezvous_addr="127.0.0.1",
    ...                   rendezvous_port=9, iface="lo", start_timeout_s=30, threads=1)
    >>> env["HOROVOD_RANK"], env["HOROVOD_CONTROLLER"]
    ('0', 'gloo')
    """
    return {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": rendezvous_addr,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(rendezvous_port),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": cpu_operations,
        "HOROVOD_GLOO_IFACE": iface,
        "HOROVOD_GLOO_TIMEOUT_SECONDS": str(max(1, int(start_timeout_s))),
        "HOROVOD_STALL_CHECK_TIME_SECONDS": str(max(5, int(stall_timeout_s) // 4)),
        "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS": str(max(10, int(stall_timeout_s))),
        "HOROVOD_HOSTNAME": slot.hostname,
        "HOROVOD_RANK": str(slot.rank),
        "HOROVOD_SIZE": str(slot.size),
        "HOROVOD_LOCAL_RANK": str(slot.local_rank),
        "HOROVOD_LOCAL_SIZE": str(slot.local_size),
        "HOROVOD_CROSS_RANK": str(slot.cross_rank),
        "HOROVOD_CROSS_SIZE": str(slot.cross_size),
        "NCCL_SOCKET_IFNAME": iface,
        "OMP_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(max(1, min(2, threads))),
    }


# TensorFlow's CPU allocator hands every large tensor to malloc, which maps fresh pages for
# each one (glibc maps anything over 32 MB): every all-reduce of a big gradient or fused buffer
# then pays page faults and the kernel's zeroing for its output. TensorFlow's BFC allocator keeps
# and reuses its regions; a 64 MB Horovod all-reduce on 2 ranks here took 100-135 ms with it
# against 128-171 ms without (``sparkdl bench train``'s probe, 3 launches each).
RUNTIME_DEFAULTS: Mapping[str, str] = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def rank_runtime_env(*, user_env: Mapping[str, str], log_level: str) -> dict[str, str]:
    """Return the non-Horovod variables of a rank: runtime defaults, then the user's own.

    Parameters
    ----------
    user_env : mapping
        ``launch.env``; its values win over the defaults (e.g. ``TF_CPU_ALLOCATOR_USE_BFC:
        "false"`` turns the BFC allocator off).
    log_level : str
        ``TF_CPP_MIN_LOG_LEVEL`` for the rank (executors do not inherit the driver's).

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> rank_runtime_env(user_env={}, log_level="2")["TF_CPU_ALLOCATOR_USE_BFC"]
    'true'
    >>> rank_runtime_env(user_env={"TF_CPU_ALLOCATOR_USE_BFC": "false"}, log_level="2")[
    ...     "TF_CPU_ALLOCATOR_USE_BFC"]
    'false'
    """
    return {"TF_CPP_MIN_LOG_LEVEL": log_level, **RUNTIME_DEFAULTS, **dict(user_env)}


def threads_per_rank(*, task_cpus: int, requested: int | None) -> int:
    """Return the intra-op thread count for one rank: the config's value, else the task's cores.

    Examples
    --------
    >>> threads_per_rank(task_cpus=2, requested=None)
    2
    """
    return requested if requested is not None else max(1, task_cpus)


def describe_plan(slots: Sequence[RankSlot]) -> Mapping[str, list[int]]:
    """Map each host to its ranks, for logs.

    Examples
    --------
    >>> dict(describe_plan(plan_ranks(["a:1", "b:2"])))
    {'a': [0], 'b': [1]}
    """
    out: dict[str, list[int]] = {}
    for slot in sorted(slots, key=lambda s: s.rank):
        out.setdefault(slot.hostname, []).append(slot.rank)
    return out
