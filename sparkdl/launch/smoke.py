"""A real, small Horovod workload that proves the Spark + Horovod + Gloo path end to end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdl.config.schema import AllreduceCheckConfig, LaunchConfig
from sparkdl.launch.barrier import BarrierLauncher

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def expected_sums(*, size: int, tensor_size: int, rounds: int) -> list[list[float]]:
    """Return the exact element-wise sums :func:`allreduce_check` must produce.

    Rank ``r`` contributes ``(r + 1) * [0, 1, ..., n-1] + round`` in each round, so the sum over
    ``size`` ranks is ``size(size+1)/2 * i + size * round`` for element ``i``.

    Examples
    --------
    >>> expected_sums(size=2, tensor_size=3, rounds=1)
    [[0.0, 3.0, 6.0]]
    """
    tri = size * (size + 1) / 2
    return [[tri * i + size * k for i in range(tensor_size)] for k in range(rounds)]


def allreduce_check(tensor_size: int, rounds: int) -> dict[str, Any]:
    """Initialise Horovod, all-reduce known tensors over Gloo and report what this rank saw.

    Runs inside a rank (TensorFlow and Horovod are imported here, not on the driver).

    Parameters
    ----------
    tensor_size : int
        Elements per tensor.
    rounds : int
        How many all-reduce calls to make (each with a different tensor).

    Returns
    -------
    dict
        ``rank``, ``size``, ``local_rank``, ``local_size``, ``cross_size``, ``sums`` (one list per
        round), ``broadcast`` (rank 0's value as every rank received it), ``gloo``/``mpi``/``nccl``
        build flags and ``host``.

    Examples
    --------
    >>> BarrierLauncher(spark, config=cfg).run_all(allreduce_check, 4, 2)  # doctest: +SKIP
    """
    import socket

    import horovod.tensorflow as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    try:
        rank = hvd.rank()
        base = np.arange(tensor_size, dtype=np.float64) * (rank + 1)
        sums = []
        for k in range(rounds):
            reduced = hvd.allreduce(tf.constant(base + k), op=hvd.Sum, name=f"sparkdl_check_{k}")
            sums.append([float(v) for v in reduced.numpy()])
        token = hvd.broadcast(tf.constant([float(rank + 100)]), root_rank=0, name="sparkdl_bcast")
        return {
            "rank": rank,
            "size": hvd.size(),
            "local_rank": hvd.local_rank(),
            "local_size": hvd.local_size(),
            "cross_size": hvd.cross_size(),
            "sums": sums,
            "broadcast": float(token.numpy()[0]),
            "gloo": bool(hvd.gloo_enabled()),
            "mpi": bool(hvd.mpi_enabled()),
            "nccl": bool(hvd.nccl_built()),
            "host": socket.gethostname(),
        }
    finally:
        hvd.shutdown()


@dataclass(frozen=True)
class AllreduceReport:
    """What every rank of the all-reduce check saw, and whether it matched the exact sums."""

    ranks: tuple[dict[str, Any], ...]
    expected: tuple[tuple[float, ...], ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every rank got the exact expected sums and rank 0's broadcast."""
        want = [list(row) for row in self.expected]
        return bool(self.ranks) and all(
            r["sums"] == want and r["broadcast"] == 100.0 and r["size"] == len(self.ranks)
            for r in self.ranks
        )

    def format(self) -> str:
        """Render one line per rank and a verdict, for the console."""
        lines = []
        for r in self.ranks:
            lines.append(
                f"rank {r['rank']}/{r['size']} (local {r['local_rank']}/{r['local_size']}, "
                f"host {r['host']}, gloo={r['gloo']}): all-reduce sums {r['sums']}, "
                f"broadcast from rank 0 = {r['broadcast']}"
            )
        lines.append(f"expected sums {[list(e) for e in self.expected]}")
        verdict = "OK: every rank got the exact sums" if self.ok else "MISMATCH"
        lines.append(f"{verdict} ({len(self.ranks)} ranks, {self.seconds:.1f} s)")
        return "\n".join(lines)


def run_allreduce_check(
    spark: SparkSession, *, launch: LaunchConfig, check: AllreduceCheckConfig
) -> AllreduceReport:
    """Run :func:`allreduce_check` on ``launch.num_workers`` barrier tasks and verify it.

    Parameters
    ----------
    spark : SparkSession
        Session whose cluster runs the ranks.
    launch : LaunchConfig
        Workers and timeouts.
    check : AllreduceCheckConfig
        Tensor size and number of rounds.

    Returns
    -------
    AllreduceReport

    Examples
    --------
    >>> report = run_allreduce_check(spark, launch=LaunchConfig(), check=AllreduceCheckConfig())  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    ranks = BarrierLauncher(spark, config=launch).run_all(
        allreduce_check, check.tensor_size, check.rounds
    )
    expected = expected_sums(
        size=launch.num_workers, tensor_size=check.tensor_size, rounds=check.rounds
    )
    return AllreduceReport(
        ranks=tuple(ranks),
        expected=tuple(tuple(row) for row in expected),
        seconds=time.perf_counter() - start,
    )
