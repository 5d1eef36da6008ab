"""A real, small Horovod workload that proves the Spark + Horovod + Gloo path end to end."""

from __future__ import annotations

from typing import Any


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
