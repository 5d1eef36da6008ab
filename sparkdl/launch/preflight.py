"""Checks run before a barrier stage starts, each failing with the conf and fix.

All but one read confs and cluster state on the driver. The exception is one tiny Spark job
(:func:`check_executor_python`) that asks the executors' Python whether it can import what a
rank needs, so a wrong interpreter fails in seconds with its name, instead of as a Java stack
from inside the barrier stage. The checks finish within ``_SLOT_WAIT_S`` (waiting for executors
to register) plus a few seconds.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sparkdl
from sparkdl.config.schema import LaunchConfig
from sparkdl.errors import ClusterMisfitError, InfraError
from sparkdl.launch.barrier import local_slots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

ALLOW_TLS = "sparkdl.launch.allowUnencryptedRendezvous"
_SLOT_WAIT_S = 20.0
# What a rank imports on an executor. Looked up with importlib.util.find_spec, which finds a
# package without running it: importing TensorFlow would cost about 5 s per task.
RANK_MODULES = (
    "sparkdl",
    "cloudpickle",
    "psutil",
    "numpy",
    "pyarrow",
    "petastorm",
    "tensorflow",
    "horovod",
)
_NO_MODULE = re.compile(r"No module named '([^']+)'")
_VERSION_MISMATCH = re.compile(r"Python in worker has different version:? \(?([\d.]+)\)? than")


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


@dataclass(frozen=True)
class ExecutorPython:
    """What one executor task's Python reported."""

    executable: str
    version: str
    missing: tuple[str, ...]
    project: str | None


def _probe(modules: Sequence[str]) -> Callable[[Iterator[Any]], Iterator[tuple[Any, ...]]]:
    """Build the probe task; as a closure it is pickled by value, so unpickling it needs only
    pyspark, not sparkdl (whose absence is what it looks for)."""
    names = tuple(modules)

    def probe(_rows: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
        import importlib
        import importlib.util
        import platform
        import sys

        missing = []
        for name in names:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(name)
        project = None
        if "sparkdl" not in missing:
            project = getattr(importlib.import_module("sparkdl"), "__project__", "unknown")
        yield sys.executable, platform.python_version(), tuple(missing), project

    return probe


def _configured_python(spark: SparkSession) -> str:
    """The interpreter Spark starts for Python tasks, as the driver knows it.

    PySpark fixes it when the SparkContext starts (``sc.pythonExec``, from ``PYSPARK_PYTHON``,
    which spark-submit sets from ``spark.pyspark.python``).
    """
    sc = spark.sparkContext
    return (
        getattr(sc, "pythonExec", None)
        or sc.getConf().get("spark.pyspark.python")
        or os.environ.get("PYSPARK_PYTHON")
        or "python3"
    )


def _fix() -> str:
    return (
        "Point the executors at an interpreter that has this project and its dependencies "
        "installed: set spark.pyspark.python (or PYSPARK_PYTHON in the executors' environment) "
        "to it, the same path on every executor host; or ship the environment with "
        "scripts/submit.sh, which packs this venv for executors with nothing installed. The "
        "driver runs "
        f"{sys.executable} (sparkdl {sparkdl.__version__})."
    )


def probe_executors(
    spark: SparkSession, *, tasks: int, modules: Sequence[str] = RANK_MODULES
) -> list[ExecutorPython]:
    """Run one tiny job of ``tasks`` tasks; return what each executor Python reported.

    Raises
    ------
    ClusterMisfitError
        The executors' Python cannot even run the probe (a module PySpark itself needs is
        missing, or its version differs from the driver's).
    InfraError
        The job failed for another reason.

    Examples
    --------
    >>> probe_executors(spark, tasks=2)[0].missing  # doctest: +SKIP
    ()
    """
    sc = spark.sparkContext
    try:
        rows = sc.parallelize(range(tasks), tasks).mapPartitions(_probe(modules)).collect()
    except Exception as exc:  # py4j: the executor's Python traceback is inside the Java error
        logger.debug("executor probe failed", exc_info=True)
        text = str(exc)
        python = _configured_python(spark)
        missing = _NO_MODULE.search(text)
        if missing:
            raise ClusterMisfitError(
                f"the executors' Python ({python}) cannot import {missing.group(1)!r} "
                f"(No module named {missing.group(1)!r}), so no sparkdl task can run there. {_fix()}"
            ) from None
        version = _VERSION_MISMATCH.search(text)
        if version:
            raise ClusterMisfitError(
                f"the executors' Python ({python}) is version {version.group(1)}, the driver's "
                f"{sys.version.split()[0]}; PySpark needs the same minor version on both. {_fix()}"
            ) from None
        first = next((line for line in text.splitlines() if "Error" in line), type(exc).__name__)
        raise InfraError(
            f"the preflight job on the executors failed: {first.strip()[:300]}; see the log for "
            "the executors' output"
        ) from exc
    return [
        ExecutorPython(exe, version, tuple(missing), project)
        for exe, version, missing, project in rows
    ]


def check_executor_python(
    spark: SparkSession, *, tasks: int, modules: Sequence[str] = RANK_MODULES
) -> None:
    """Refuse to launch when the executors' Python lacks what a rank imports.

    Raises
    ------
    ClusterMisfitError
        Naming the executors' interpreter, the missing modules and the fix
        (``spark.pyspark.python`` / ``PYSPARK_PYTHON``).

    Examples
    --------
    >>> check_executor_python(spark, tasks=2)  # doctest: +SKIP
    """
    reports = probe_executors(spark, tasks=tasks, modules=modules)
    for r in reports:
        if r.missing:
            raise ClusterMisfitError(
                f"the executors' Python {r.executable} (Python {r.version}) lacks "
                f"{', '.join(repr(m) for m in r.missing)}, which the ranks import. {_fix()}"
            )
        if r.project != sparkdl.__project__:
            raise ClusterMisfitError(
                f"on the executors' Python {r.executable}, 'import sparkdl' is not "
                f"{sparkdl.__project__} (probably Databricks' preinstalled sparkdl). {_fix()}"
            )
    logger.info(
        "executors' Python: %s",
        ", ".join(sorted({f"{r.executable} (Python {r.version})" for r in reports})),
    )


def preflight(spark: SparkSession, *, launch: LaunchConfig, check_build: bool = True) -> None:
    """Refuse to launch when the cluster cannot run ``launch.num_workers`` Horovod ranks.

    Raises
    ------
    ClusterMisfitError
        See :func:`check_confs`, :func:`check_horovod_build`, :func:`wait_for_slots` and
        :func:`check_executor_python`.

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
    check_executor_python(spark, tasks=launch.num_workers)
    logger.info(
        "preflight passed in %.1f s: %d workers, %d slots%s",
        time.perf_counter() - start,
        launch.num_workers,
        have,
        ", GPUs per task" if gpus else "",
    )
