"""Run a function on N Spark barrier tasks as Horovod ranks that talk over Gloo.

The driver starts Horovod's rendezvous server on its own address; each barrier task reads every
task's executor address, derives the same rank plan (:func:`sparkdl.launch.plan.plan_ranks`),
posts it to the server signed with the launch's secret (the first one installs it), all tasks
meet at a barrier, and then each runs the function in a child process whose environment makes it
a Horovod rank (and holds the secret, for the rank's progress reports and heartbeats).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sparkdl.config.schema import LaunchConfig
from sparkdl.errors import ClusterMisfitError, InfraError
from sparkdl.launch.child import run_in_child
from sparkdl.launch.inputerror import SCOPE as INPUT_ERROR_SCOPE
from sparkdl.launch.inputerror import reported_input_error
from sparkdl.launch.output import OutputForwarder, OutputSink
from sparkdl.launch.plan import (
    describe_plan,
    horovod_env,
    plan_ranks,
    rank_runtime_env,
    threads_per_rank,
)
from sparkdl.launch.rankerror import SCOPE as RANK_ERROR_SCOPE
from sparkdl.launch.rankerror import is_consequence, reported_rank_error
from sparkdl.launch.rendezvous import SECRET_ENV, RendezvousService, post_plan
from sparkdl.launch.watch import Reporter, StageWatcher

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_LOCAL_MASTER = re.compile(r"^local(?:\[(\*|\d+)(?:,\s*\d+)?\])?$")
_LOCAL_CLUSTER_MASTER = re.compile(r"^local-cluster\[(\d+),\s*(\d+),\s*\d+\]$")


class LaunchError(InfraError):
    """The barrier stage failed; the message holds the failing rank's last output lines."""


def interface_for(address: str) -> str:
    """Return the network interface that carries ``address`` on this machine (for Gloo).

    Parameters
    ----------
    address : str
        A host name or IPv4 address of this machine, as Spark reports it for the executor.

    Returns
    -------
    str
        The interface name, such as ``lo`` or ``eth0``.

    Examples
    --------
    >>> interface_for("127.0.0.1")
    'lo'
    """
    import psutil

    ip = socket.gethostbyname(address)
    nics = psutil.net_if_addrs()
    for name, addrs in nics.items():
        if any(a.family == socket.AF_INET and a.address == ip for a in addrs):
            return name
    if ip.startswith("127."):
        for name, addrs in nics.items():
            if any(a.family == socket.AF_INET and a.address.startswith("127.") for a in addrs):
                return name
    raise ClusterMisfitError(
        f"no network interface on this executor carries {address} ({ip}), the address Spark "
        f"reports for it; interfaces: {sorted(nics)}. Set SPARK_LOCAL_IP on the executors to "
        "an address of one of them."
    )


def gpu_env(resources: dict[str, Any]) -> dict[str, str]:
    """Environment that pins a rank to the GPUs Spark assigned to its task.

    ``CUDA_VISIBLE_DEVICES`` is set before TensorFlow loads in the rank's child process, so the
    rank sees only its own GPUs (as device 0..n-1), and Horovod uses NCCL for them.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> gpu_env({"gpu": SimpleNamespace(addresses=["3"])})["CUDA_VISIBLE_DEVICES"]
    '3'
    >>> gpu_env({})
    {}
    """
    gpu = resources.get("gpu")
    if gpu is None or not list(gpu.addresses):
        return {}
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(str(a) for a in gpu.addresses),
        "HOROVOD_GPU_OPERATIONS": "NCCL",
    }


def local_slots(master: str, cores: int) -> int | None:
    """Return the concurrent task slots of a local master, or None for a real cluster.

    Examples
    --------
    >>> local_slots("local[3]", 8), local_slots("local-cluster[2,1,1024]", 8)
    (3, 2)
    """
    m = _LOCAL_MASTER.match(master)
    if m:
        n = m.group(1)
        return cores if n in (None, "*") else int(n)
    m = _LOCAL_CLUSTER_MASTER.match(master)
    if m:
        return int(m.group(1)) * int(m.group(2))
    return None


def _barrier_task(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    rdv_addr: str,
    rdv_port: int,
    rdv_secret: bytes,
    start_timeout_s: float,
    stall_timeout_s: float,
    threads: int | None,
    return_all: bool,
    extra_env: dict[str, str],
    warm_start: bool = False,
    forward_output: bool = False,
    echo_output: bool = True,
) -> Callable[[Iterator[Any]], Iterator[tuple[int, bytes]]]:
    """Build the closure each barrier task runs; it captures only plain values."""

    def task(_rows: Iterator[Any]) -> Iterator[tuple[int, bytes]]:
        import cloudpickle
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        addresses = [info.address for info in ctx.getTaskInfos()]
        slots = plan_ranks(addresses)
        slot = slots[ctx.partitionId()]
        # Every task signs the plan: the server then knows the tasks' addresses, the only
        # ones it lets use Horovod's (unsigned) Gloo keys.
        post_plan(
            addr=rdv_addr,
            port=rdv_port,
            secret=rdv_secret,
            partition=ctx.partitionId(),
            slots=slots,
            timeout_s=start_timeout_s,
        )
        # No rank may start Gloo before the server holds the plan.
        ctx.barrier()
        env = horovod_env(
            slot,
            rendezvous_addr=rdv_addr,
            rendezvous_port=rdv_port,
            iface=interface_for(slot.hostname),
            start_timeout_s=start_timeout_s,
            stall_timeout_s=stall_timeout_s,
            threads=threads_per_rank(task_cpus=int(ctx.cpus()), requested=threads),
        )
        env.update(extra_env)
        env[SECRET_ENV] = rdv_secret.hex()  # the rank signs its reports with it
        env.update(gpu_env(ctx.resources()))
        label = (
            f"[rank {slot.rank}/{slot.size} stage {ctx.stageId()} attempt {ctx.attemptNumber()}]"
        )
        forward = (
            OutputForwarder(
                addr=rdv_addr,
                port=rdv_port,
                secret=rdv_secret,
                rank=slot.rank,
                label=label,
                echo=echo_output,
            )
            if forward_output
            else None
        )
        with forward or contextlib.nullcontext():
            result = run_in_child(
                fn, args=args, env=env, label=label, warm_start=warm_start, echo=forward
            )
        if return_all or slot.rank == 0:
            yield slot.rank, cloudpickle.dumps(result)

    return task


class BarrierLauncher:
    """Launch a function as Horovod ranks, one Spark barrier task per rank.

    Parameters
    ----------
    spark : SparkSession
        The session whose cluster runs the ranks.
    config : LaunchConfig
        Number of workers, timeouts and threads per rank.

    Examples
    --------
    >>> launcher = BarrierLauncher(spark, config=LaunchConfig(num_workers=2))  # doctest: +SKIP
    >>> launcher.run(my_train_fn, "arg")  # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession, *, config: LaunchConfig) -> None:
        self.spark = spark
        self.config = config
        self._check_slots()

    def _check_slots(self) -> None:
        sc = self.spark.sparkContext
        task_cpus = int(sc.getConf().get("spark.task.cpus", "1"))
        slots = local_slots(sc.master, sc.defaultParallelism)
        if slots is not None and self.config.num_workers > slots // task_cpus:
            raise ClusterMisfitError(
                f"launch.num_workers={self.config.num_workers} but master {sc.master} runs at most "
                f"{slots // task_cpus} tasks at once (spark.task.cpus={task_cpus}); a barrier stage "
                "needs all of them together. Lower launch.num_workers or give Spark more cores "
                "(spark.cores / spark.local_cluster)."
            )

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_report: Reporter | None = None,
        heartbeat_timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> Any:
        """Run ``fn(*args)`` on every rank and return rank 0's result.

        Parameters
        ----------
        fn : callable
            Runs in each rank's child process.
        *args
            Its arguments (plain, picklable values).
        on_report : callable, optional
            Called on the driver with ``(key, value)`` for each report a rank PUTs to the
            rendezvous server under ``/sparkdl-progress/<key>`` while the stage runs.
        heartbeat_timeout_s : float, optional
            When set, every rank must PUT ``/sparkdl-heartbeat/rank-<r>`` at least this often
            (see :func:`sparkdl.launch.watch.send`); a silent rank gets the stage cancelled.
        on_output : callable, optional
            Called on the driver with ``(rank, line)`` for every line a rank prints, while the
            stage runs (:mod:`sparkdl.launch.output`); the executor logs get them either way.

        Raises
        ------
        LaunchError
            When any rank fails; the message carries that rank's last output lines.
        """
        return self._launch(
            fn,
            args,
            return_all=False,
            on_report=on_report,
            heartbeat_timeout_s=heartbeat_timeout_s,
            on_output=on_output,
        )[0]

    def run_all(
        self, fn: Callable[..., Any], *args: Any, on_report: Reporter | None = None
    ) -> list[Any]:
        """Run ``fn(*args)`` on every rank and return all results, indexed by rank."""
        return self._launch(fn, args, return_all=True, on_report=on_report)

    def _launch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        return_all: bool,
        on_report: Reporter | None = None,
        heartbeat_timeout_s: float | None = None,
        on_output: OutputSink | None = None,
    ) -> list[Any]:
        import cloudpickle

        sc = self.spark.sparkContext
        cfg = self.config
        n = cfg.num_workers
        driver_host = sc.getConf().get("spark.driver.host", socket.gethostname())
        group = f"sparkdl-launch-{uuid.uuid4().hex[:8]}"
        logger.info("will run %s on %d Spark barrier tasks as Horovod ranks", _name(fn), n)
        with RendezvousService(host=driver_host, verbose=cfg.verbose) as rdv:
            task = _barrier_task(
                fn,
                args,
                rdv_addr=rdv.host,
                rdv_port=rdv.port,
                rdv_secret=rdv.secret,
                start_timeout_s=cfg.start_timeout_s,
                stall_timeout_s=cfg.stall_timeout_s,
                threads=cfg.threads_per_worker,
                return_all=return_all,
                warm_start=cfg.warm_start,
                forward_output=on_output is not None,
                # a local master's executor log is this console: print each line once
                echo_output=on_output is None or not _LOCAL_MASTER.match(sc.master),
                # Executors do not inherit the driver's environment; TensorFlow's C++ banner
                # is noise in every rank's log unless the driver asked for it.
                extra_env=rank_runtime_env(
                    user_env=cfg.env, log_level=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
                ),
            )
            sc.setJobGroup(group, f"sparkdl: {_name(fn)} on {n} Horovod ranks", True)
            watcher = StageWatcher(
                rdv,
                on_report=on_report,
                workers=n,
                heartbeat_timeout_s=heartbeat_timeout_s,
                first_heartbeat_s=cfg.start_timeout_s,
                cancel=lambda reason: sc.cancelJobGroup(group),
                on_output=on_output,
            )
            try:
                with watcher:
                    rows = sc.parallelize(range(n), n).barrier().mapPartitions(task).collect()
            except Exception as exc:
                if watcher.stall_reason:
                    raise LaunchError(watcher.stall_reason) from exc
                # a rank's bad input, whichever task's failure Spark reports (its peers fail
                # once it exits and Horovod shuts down, and may be seen first)
                note = reported_input_error(rdv.scope_items(INPUT_ERROR_SCOPE))
                if note:
                    raise LaunchError(f"a Horovod rank of {n} failed{note}") from exc
                # a peer's "Horovod has been shut down", when the rank that failed first said
                # why before it exited
                cause = reported_rank_error(rdv.scope_items(RANK_ERROR_SCOPE))
                if cause and is_consequence(str(exc)):
                    raise LaunchError(
                        f"a Horovod rank failed in the barrier stage of {n} tasks: {cause}"
                    ) from exc
                raise LaunchError(_summarise_failure(exc, n)) from exc
            finally:
                sc.setLocalProperty("spark.jobGroup.id", None)
            if rdv.plan:
                logger.info("rank plan by host: %s", dict(describe_plan(rdv.plan)))
        results = dict((rank, cloudpickle.loads(blob)) for rank, blob in rows)
        return [results[r] for r in sorted(results)]


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _summarise_failure(exc: Exception, n: int) -> str:
    """Keep the informative part of a Py4J/PySpark error: the failing rank's message."""
    text = str(exc)
    marker = "RankError: "
    if marker in text:
        body = text[text.index(marker) + len(marker) :]
        body = body.split("\n\tat ")[0].rstrip()
        return f"a Horovod rank failed in the barrier stage of {n} tasks: {body}"
    return f"the barrier stage of {n} Horovod ranks failed: {text[:4000]}"
