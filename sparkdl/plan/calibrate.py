"""Calibration for ``sparkdl plan``: what this machine's compute, link and reader do, measured.

- :func:`measure_compute`: a rank's epochs as the trainer runs them (:mod:`sparkdl.plan.timing`:
  the step, each ``fit``'s fixed cost, validation per row, the epoch's checkpoint), each layer's
  forward and backward pass, and the rates of top-k selection and matrix products; in a fresh
  child process whose TensorFlow uses the planned threads and the ranks' runtime variables (a
  GPU when one is visible: it says which); ranks that share a host, as that many ranks of a
  barrier stage.
- :func:`measure_link`: all-reduce and allgather times of 8 B to 16 MB between two Horovod
  ranks in a barrier stage of the session's cluster, fitted to ``t = a + S b``.
- :func:`measure_input`: one rank's petastorm reader on a prepared dataset, rows/s.

Each result is cached by :mod:`sparkdl.plan.cache` per machine and stack.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Any

from sparkdl.plan.model import Compute, Link, Rates
from sparkdl.plan.timing import time_compute, time_rank_steps

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sparkdl.config.train import TrainConfig

logger = logging.getLogger(__name__)

LINK_SIZES = (8, 1024, 65_536, 1 << 20, 4 << 20, 16 << 20)


def measure_compute(
    train: TrainConfig,
    *,
    input_dim: int,
    num_classes: int,
    threads: int,
    model_fn: Any = None,
    ranks_per_host: int = 1,
    launch_env: dict[str, str] | None = None,
    spark: SparkSession | None = None,
) -> tuple[Compute, Rates, list[tuple[int, ...]], str]:
    """Measure one rank's compute for ``train.model`` at ``train.batch_size`` (a few seconds).

    With ``ranks_per_host`` above 1 the step and the fixed part per epoch are the slowest
    rank's of as many training at once: ranks that share a machine share its cores, memory
    bandwidth and caches, and wait for each other at every exchange. With ``spark`` they are
    that many real ranks in a barrier stage of its cluster (:func:`time_rank_steps`); without
    one, that many calibration children side by side, which missed about a fifth of a real
    co-located rank's step (the demo MLP on 2 ranks: the slower rank of a stage stepped in
    1.35-1.43 ms, the slower child in 1.06-1.11 ms). ``launch_env`` is the ranks' ``launch.env``
    (their allocator and threading variables apply here too).

    Returns
    -------
    tuple
        :class:`Compute`, :class:`Rates`, the model's trainable weight shapes, and the device
        measured (``CPU`` or ``GPU``).

    Raises
    ------
    BadInputError
        When the model cannot be built on bad input (the ranks' own error: it names
        ``train.model`` and the fix); the ranks of the run would fail the same way.
    InfraError
        When the calibration failed otherwise (its first line).
    """
    from sparkdl.errors import BadInputError, InfraError
    from sparkdl.launch.child import RankError
    from sparkdl.launch.inputerror import input_error_in

    logger.info(
        "measuring %s at batch %d with %d thread(s): epochs, validation, checkpoint, layers",
        train.model.kind,
        train.batch_size,
        threads,
    )
    args = (train, input_dim, num_classes, threads, model_fn)
    failed, bad = None, None
    try:
        if ranks_per_host > 1 and spark is not None:
            got = _in_stage(spark, args, ranks=ranks_per_host, launch_env=launch_env)
            if "error" in got:
                failed = f"{got['class']}: {got['error']}"
                bad = BadInputError(got["error"]) if got["class"] == "BadInputError" else None
            copies = got.get("ranks", [])
        else:
            got, others = _together(args, copies=ranks_per_host, launch_env=launch_env)
            copies = [got, *others]
    except RankError as exc:
        failed, bad = str(exc).splitlines()[0], input_error_in(str(exc))
    if bad is not None:  # the ranks would build the same model: the run cannot work as is
        raise bad
    if failed:
        function = f", {train.model.function}" if train.model.function else ""
        raise InfraError(
            f"train.model ({train.model.kind}{function}) could not be timed for the plan: {failed}"
        )
    # ranks on one host wait for the slowest of them at every exchange
    compute = Compute(
        batch_size=train.batch_size,
        threads=threads,
        step_s=max(c["step_s"] for c in copies),
        fit_s=max(c["fit_s"] for c in copies),
        forward_row_s=got["forward_row_s"],
        checkpoint_s=got["checkpoint_s"],
        layers=got["layers"],
    )
    rates = Rates(topk_values_per_s=got["topk_values_per_s"], matmul_flops=got["matmul_flops"])
    return compute, rates, [tuple(s) for s in got["shapes"]], got["device"]


def _in_stage(
    spark: SparkSession, args: tuple[Any, ...], *, ranks: int, launch_env: dict[str, str] | None
) -> dict[str, Any]:
    """:func:`time_rank_steps` on ``ranks`` real ranks of ``spark``'s cluster: rank 0's result."""
    import sparkdl

    got: dict[str, Any] = sparkdl.run(
        time_rank_steps,
        *args,
        num_workers=ranks,
        spark=spark,
        stream_output=False,
        threads_per_worker=args[3],
        env=dict(launch_env or {}),
    )
    if "ranks" in got:
        steps = ", ".join(f"{1000 * r['step_s']:.3f}" for r in got["ranks"])
        logger.info("step of %d ranks side by side in a barrier stage: %s ms", ranks, steps)
    return got


def _together(
    args: tuple[Any, ...], *, copies: int, launch_env: dict[str, str] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``copies`` calibration children at once: the full one, and step-only ones."""
    import threading

    from sparkdl.launch.child import run_in_child
    from sparkdl.launch.plan import rank_runtime_env

    env = {
        **rank_runtime_env(user_env=dict(launch_env or {}), log_level="2"),
        "TF_NUM_INTRAOP_THREADS": str(args[3]),
    }
    results: dict[int, Any] = {}
    failed: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = run_in_child(
                time_compute,
                args=(*args, i > 0),
                env=env,
                label="[plan calibration]",
                timeout_s=180,
                echo=lambda line: logger.debug("%s", line),
            )
        except BaseException as exc:  # re-raised on the calling thread
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(max(1, copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return results[0], [results[i] for i in range(1, len(threads))]


def _link_probe(sizes: tuple[int, ...]) -> dict[str, list[float]]:
    """Runs on each rank: mean seconds of an all-reduce and an allgather per size."""
    import horovod.tensorflow as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    out: dict[str, list[float]] = {"allreduce": [], "allgather": []}
    for size in sizes:
        t = tf.constant(np.ones(max(1, size // 4), dtype=np.float32))
        half = tf.constant(np.ones(max(1, size // 8), dtype=np.float32))
        # in a traced function, as the trainer's exchanges run them
        reduce = tf.function(lambda t=t, n=f"p{size}": hvd.allreduce(t, op=hvd.Sum, name=n))
        gather = tf.function(lambda h=half, n=f"g{size}": hvd.allgather(h, name=n))
        for kind, fn in (("allreduce", reduce), ("allgather", gather)):
            fn()
            out[kind].append(_mean_s(lambda f=fn: f().numpy(), reps=_probe_reps(size)))
    return out


def _probe_reps(size: int) -> int:
    """Calls of a collective timed at ``size`` bytes, the same on every rank (a rank that
    stopped early would leave the others waiting). Small ones take 1-5 ms each, one Horovod
    cycle or a few, at random, so they take many calls: four probes in a row here gave an
    alpha of 663-939 us with 41 calls and 662-800 us with 101 (the median of 7 had given
    568-1343 us from one run to the next). Large ones are bandwidth, and steadier.

    Examples
    --------
    >>> _probe_reps(8), _probe_reps(16 << 20)
    (101, 7)
    """
    return 101 if size <= 65_536 else 7


def _mean_s(fn: Any, *, reps: int) -> float:
    """Mean seconds of ``reps`` calls of ``fn`` (a run pays every call: the mean, not the
    median)."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.fmean(times)


def _link_of(sizes: Any, seconds: list[float], *, per_message: int) -> Link:
    """The link of a 2-rank collective's times: alpha from the two smallest sizes (where
    latency is all there is), B from the slope between the 1 MB and the largest size.

    Examples
    --------
    >>> _link_of([8, 1024, 1 << 20, 16 << 20], [0.002, 0.002, 0.003, 0.018], per_message=2)
    Link(bandwidth=1048576000.0, latency=0.001)
    """
    alpha = statistics.median(seconds[:2]) / per_message
    i = list(sizes).index(1 << 20) if (1 << 20) in list(sizes) else len(sizes) // 2
    slope = (seconds[-1] - seconds[i]) / (sizes[-1] - sizes[i])
    return Link(bandwidth=1.0 / max(slope, 1e-12), latency=alpha)


def measure_link(spark: SparkSession, *, start_timeout_s: float = 120) -> dict[str, Link]:
    """The link between two ranks of ``spark``'s cluster, as the ring models read it.

    Returns ``{"allreduce": Link, "allgather": Link}``: for two ranks a ring all-reduce takes
    ``S/B + 2 alpha`` and an allgather ``s/B + alpha``, so ``alpha`` and ``B`` follow from the
    fitted line of each.
    """
    import sparkdl

    logger.info("measuring the link: all-reduce and allgather of 8 B to 16 MB on 2 ranks")
    got = sparkdl.run(
        _link_probe,
        LINK_SIZES,
        num_workers=2,
        spark=spark,
        stream_output=False,
        start_timeout_s=start_timeout_s,
    )
    links = {
        # two ranks: an all-reduce takes S/B + 2 alpha, an allgather of s each s/B + alpha
        "allreduce": _link_of(LINK_SIZES, got["allreduce"], per_message=2),
        "allgather": _link_of([s // 2 for s in LINK_SIZES], got["allgather"], per_message=1),
    }
    logger.info(
        "link between 2 ranks: all-reduce %.3g Gbit/s, alpha %.1f us; allgather %.3g Gbit/s",
        8e-9 * links["allreduce"].bandwidth,
        1e6 * links["allreduce"].latency,
        8e-9 * links["allgather"].bandwidth,
    )
    return links


def measure_input(
    url: str, *, rows: int, row_groups: int, reader_workers: int, max_rows: int = 50_000
) -> float:
    """One rank's petastorm read rate on a prepared split (rows/s), from a shard of at most
    about ``max_rows`` of its ``rows`` rows (a shard holds one row group or more: the split's
    ``row_groups`` bound how many shards it can be cut into)."""
    from sparkdl.train.data import load_shard

    shards = max(1, min(rows // max_rows, row_groups))
    start = time.perf_counter()
    x, _ = load_shard(url, rank=0, size=shards, reader_workers=reader_workers)
    return len(x) / max(time.perf_counter() - start, 1e-6)
