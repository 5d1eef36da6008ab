"""Checks run on the driver before a barrier stage starts, each failing with the conf and fix.

Everything here reads confs and cluster state only; nothing runs on the executors. The checks
finish within ``_SLOT_WAIT_S`` (waiting for executors to register) plus a few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sparkdl.config.schema import LaunchConfig
from sparkdl.errors import ClusterMisfitError
from sparkdl.launch.barrier import local_slots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

ALLOW_TLS = "sparkdl.launch.allowUnencryptedRendezvous"
_SLOT_WAIT_S = 20.0


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes")


def cluster_slots(spark: SparkSession) -> int:
    """Concurrent task slots the cluster offers now (executors x cores / task cpus)."""
    sc = spark.sparkContext
    slots = local_slots(sc.master, sc.defaultParallelism)
    task_cpus = int(sc.getConf().get("spark.task.cpus", "1") or 1)
    if slots is not None:
        return slots // task_cpus
    jsc = sc._jsc.sc()
    profile = jsc.resourceProfileManager().defaultResourceProfile()
    return int(jsc.maxNumConcurrentTasks(profile))


def settled_slots(spark: SparkSession, *, want: int | None = None, wait_s: float = 60.0) -> int:
    """Task slots once executors have registered: at least ``want``, or the count once it is
    non-zero and unchanged for 3 s (a standalone or YARN session starts with none)."""
    sc = spark.sparkContext
    if local_slots(sc.master, sc.defaultParallelism) is not None:
        return cluster_slots(spark)  # fixed by the master URL
    deadline = time.monotonic() + wait_s
    have, stable_since = cluster_slots(spark), time.monotonic()
    while time.monotonic() < deadline:
        if want is not None and have >= want:
            break
        if want is None and have > 0 and time.monotonic() - stable_since >= 3.0:
            break
        time.sleep(0.5)
        now = cluster_slots(spark)
        if now != have:
            have, stable_since = now, time.monotonic()
    return have


def check_horovod_build(*, gpus: bool) -> None:
    """Raise RuntimeError when the installed Horovod lacks Gloo (CPU) or NCCL (GPU)."""
    import horovod.tensorflow as hvd

    if not hvd.gloo_built():
        raise ClusterMisfitError(
            "Horovod was built without Gloo, which sparkdl's CPU ranks use; rebuild it with "
            "HOROVOD_WITH_GLOO=1 (scripts/setup.sh --force)"
        )
    if gpus and not hvd.nccl_built():
        raise ClusterMisfitError(
            "GPUs are requested (spark.task.resource.gpu.amount) but Horovod was built without "
            "NCCL; rebuild it with HOROVOD_GPU_OPERATIONS=NCCL on a machine with CUDA and NCCL, "
            "or run on CPU executors"
        )


def check_confs(conf: Mapping[str, str]) -> bool:
    """Check the session's confs; return whether the ranks get GPUs.

    Raises
    ------
    RuntimeError
        Dynamic allocation on; TLS on without ``sparkdl.launch.allowUnencryptedRendezvous``;
        executor GPUs without ``spark.task.resource.gpu.amount``.

    Examples
    --------
    >>> check_confs({"spark.dynamicAllocation.enabled": "false"})
    False
    """
    if _truthy(conf.get("spark.dynamicAllocation.enabled", "false")):
        raise ClusterMisfitError(
            "spark.dynamicAllocation.enabled is true, but a barrier stage needs all its executors "
            "for the whole run; start the session with spark.dynamicAllocation.enabled=false "
            "(sparkdl's training sessions do: build_session(..., launch=...))"
        )
    if _truthy(conf.get("spark.ssl.enabled", "false")) and not _truthy(
        conf.get(ALLOW_TLS, "false")
    ):
        raise ClusterMisfitError(
            "spark.ssl.enabled is true, but Horovod's rendezvous and Gloo traffic between ranks is "
            f"not encrypted. Set {ALLOW_TLS}=true to accept that on this cluster, or train on a "
            "cluster without TLS"
        )
    executor_gpus = float(conf.get("spark.executor.resource.gpu.amount", "0") or 0)
    task_gpus = float(conf.get("spark.task.resource.gpu.amount", "0") or 0)
    if executor_gpus > 0 and task_gpus <= 0:
        raise ClusterMisfitError(
            f"spark.executor.resource.gpu.amount is {executor_gpus:g} but "
            "spark.task.resource.gpu.amount is not set, so tasks get no GPU; set "
            "spark.task.resource.gpu.amount=1 (one GPU per Horovod rank)"
        )
    return task_gpus > 0


def wait_for_slots(
    slots: Callable[[], int], *, launch: LaunchConfig, master: str, wait_s: float = _SLOT_WAIT_S
) -> int:
    """Wait up to ``wait_s`` for enough task slots; raise RuntimeError naming the fix if short."""
    deadline = time.monotonic() + min(wait_s, launch.start_timeout_s)
    have = slots()
    while have < launch.num_workers and time.monotonic() < deadline:
        time.sleep(1.0)
        have = slots()
    if have < launch.num_workers:
        raise ClusterMisfitError(
            f"launch.num_workers={launch.num_workers} but the cluster ({master}) offers {have} "
            "concurrent task slots (spark.executor.instances x spark.executor.cores / "
            "spark.task.cpus); a barrier stage needs one slot per rank at once. Lower "
            "launch.num_workers or add executors or cores."
        )
    return have


def preflight(spark: SparkSession, *, launch: LaunchConfig, check_build: bool = True) -> None:
    """Refuse to launch when the cluster cannot run ``launch.num_workers`` Horovod ranks.

    Raises
    ------
    RuntimeError
        See :func:`check_confs`, :func:`check_horovod_build` and :func:`wait_for_slots`.

    Examples
    --------
    >>> preflight(spark, launch=LaunchConfig(num_workers=2))  # doctest: +SKIP
    """
    start = time.perf_counter()
    conf = dict(spark.sparkContext.getConf().getAll())
    gpus = check_confs(conf)
    if check_build:
        check_horovod_build(gpus=gpus)
    have = wait_for_slots(
        lambda: cluster_slots(spark), launch=launch, master=spark.sparkContext.master
    )
    logger.info(
        "preflight passed in %.1f s: %d workers, %d slots%s",
        time.perf_counter() - start,
        launch.num_workers,
        have,
        ", GPUs per task" if gpus else "",
    )
