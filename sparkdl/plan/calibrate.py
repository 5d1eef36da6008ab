"""Calibration for ``sparkdl plan``: what this machine's compute, link and reader do, measured.

- :func:`measure_compute`: the model's own train step (Keras ``fit`` over in-memory batches
  through Horovod's one-rank path and sparkdl's sync exchange, as a rank runs it), each layer's forward and backward pass, inference per row, a checkpoint
  write, and the rates of top-k selection and matrix products; in a fresh child process whose
  TensorFlow uses the planned threads (a GPU when one is visible: it says which).
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

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sparkdl.config.train import TrainConfig

logger = logging.getLogger(__name__)

LINK_SIZES = (8, 1024, 65_536, 1 << 20, 4 << 20, 16 << 20)


def _timed(fn: Any, *, min_s: float = 0.3, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median seconds of ``fn()`` over at least ``min_reps`` calls and ``min_s`` seconds."""
    times: list[float] = []
    spent = 0.0
    while len(times) < min_reps or (spent < min_s and len(times) < max_reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return float(statistics.median(times))


def _compute_in_child(
    train: TrainConfig,
    input_dim: int,
    num_classes: int,
    threads: int,
    model_fn: Any,
    steps_only: bool = False,
) -> dict[str, Any]:
    """Runs in the child: every measurement of :func:`measure_compute`, as plain values (only
    the step time with ``steps_only``: the other copies of a shared-host calibration)."""
    import dataclasses
    import os
    import tempfile

    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    from sparkdl.train.models import build_model, compile_for_training, make_optimizer
    from sparkdl.train.modes import wrap_optimizer

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    b = train.batch_size
    model = build_model(
        train.model, input_dim=input_dim, num_classes=num_classes, seed=train.seed, fn=model_fn
    )
    # the ranks' own optimizer path: Horovod (one rank here) and sparkdl's sync exchange, so
    # the step holds what a rank's step holds but the other ranks' communication
    hvd.init()
    sync = dataclasses.replace(train, mode="sync", compression="none")
    opt, _ = wrap_optimizer(make_optimizer(sync, train.learning_rate), cfg=sync, model=model)
    compile_for_training(model, opt, num_classes=num_classes)
    classification = num_classes > 1
    rng = np.random.default_rng(0)
    steps = 40
    x = rng.normal(size=(steps * b, input_dim)).astype(np.float32)
    y = rng.integers(0, max(2, num_classes), size=steps * b).astype(np.int32)
    if not classification:
        y = y.astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(b).cache().repeat()

    def fit_s(n: int) -> float:
        begin = time.perf_counter()
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0)
        return time.perf_counter() - begin

    fit_s(steps)  # traces the step and fills the dataset's cache
    rough = fit_s(10) / 10
    # a short and a long fit: their difference is the steps alone, without fit's own start-up;
    # the median of three such pairs
    short = max(20, min(400, int(0.5 / max(rough, 1e-5))))
    step_s = statistics.median((fit_s(3 * short) - fit_s(short)) / (2 * short) for _ in range(3))
    if steps_only:
        return {"step_s": step_s}
    xb = tf.constant(x[:b])
    forward = tf.function(lambda t: model(t, training=False))
    forward(xb)
    forward_row_s = _timed(lambda: forward(xb).numpy()) / b
    layers = {}
    for layer in model.layers:
        if not layer.trainable_weights:
            continue
        if not isinstance(layer.input_shape, tuple):  # a layer of several inputs: not timed
            continue
        inp = tf.random.normal([b, *[int(d) for d in layer.input_shape[1:]]])

        @tf.function
        def pass_(t: Any, layer: Any = layer) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(t)
                out = tf.reduce_sum(layer(t, training=True))
            return tape.gradient(out, [t, *layer.trainable_weights])

        pass_(inp)
        layers[layer.name] = _timed(lambda p=pass_, i=inp: [g.numpy() for g in p(i)])
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt)
    with tempfile.TemporaryDirectory(prefix="sparkdl-plan-") as tmp:
        checkpoint_s = _timed(lambda: ckpt.write(os.path.join(tmp, "c")), min_s=0.2)
    big = tf.random.normal([1 << 20])
    topk = tf.function(lambda t: tf.math.top_k(tf.abs(t), k=1 << 13).indices)
    topk(big)
    topk_rate = (1 << 20) / _timed(lambda: topk(big).numpy())
    a, m = tf.random.normal([1024, 512]), tf.random.normal([512, 64])
    mm = tf.function(lambda p, q: tf.matmul(p, q))
    mm(a, m)
    flops = 2 * 1024 * 512 * 64 / _timed(lambda: mm(a, m).numpy())
    shapes = [tuple(int(d) for d in w.shape) for w in model.trainable_weights]
    return {
        "device": device,
        "step_s": step_s,
        "forward_row_s": forward_row_s,
        "checkpoint_s": checkpoint_s,
        "layers": layers,
        "topk_values_per_s": topk_rate,
        "matmul_flops": flops,
        "shapes": shapes,
    }


def measure_compute(
    train: TrainConfig,
    *,
    input_dim: int,
    num_classes: int,
    threads: int,
    model_fn: Any = None,
    ranks_per_host: int = 1,
) -> tuple[Compute, Rates, list[tuple[int, ...]], str]:
    """Measure one rank's compute for ``train.model`` at ``train.batch_size`` (a few seconds).

    With ``ranks_per_host`` above 1, as many copies train at once and the step time is their
    median: ranks that share a machine share its memory bandwidth and caches.

    Returns
    -------
    tuple
        :class:`Compute`, :class:`Rates`, the model's trainable weight shapes, and the device
        measured (``CPU`` or ``GPU``).

    Raises
    ------
    BadInputError
        When the model cannot be built (the message names ``train.model`` and the fix).
    """
    from sparkdl.launch.child import RankError, run_in_child

    logger.info(
        "measuring %s at batch %d with %d thread(s): train steps, layers, inference, checkpoint",
        train.model.kind,
        train.batch_size,
        threads,
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": str(threads)}

    def child(steps_only: bool) -> dict[str, Any]:
        return run_in_child(
            _compute_in_child,
            args=(train, input_dim, num_classes, threads, model_fn, steps_only),
            env=env,
            label="[plan calibration]",
            timeout_s=180,
            echo=lambda line: logger.debug("%s", line),
        )

    try:
        got, others = _together(child, copies=ranks_per_host)
    except RankError as exc:
        from sparkdl.errors import BadInputError

        raise BadInputError(
            f"train.model ({train.model.kind}{', ' + train.model.function if train.model.function else ''}) "
            f"could not be built and timed for the plan: {str(exc).splitlines()[0]}. Check "
            "train.model (sparkdl config --describe train.model)"
        ) from exc
    compute = Compute(
        batch_size=train.batch_size,
        threads=threads,
        step_s=statistics.median([got["step_s"], *(o["step_s"] for o in others)]),
        forward_row_s=got["forward_row_s"],
        checkpoint_s=got["checkpoint_s"],
        layers=got["layers"],
    )
    rates = Rates(topk_values_per_s=got["topk_values_per_s"], matmul_flops=got["matmul_flops"])
    return compute, rates, [tuple(s) for s in got["shapes"]], got["device"]


def _together(child: Any, *, copies: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``copies`` calibration children at once: the full one, and step-only ones."""
    import threading

    results: dict[int, Any] = {}
    failed: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = child(i > 0)
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
    """Runs on each rank: median seconds of an all-reduce and an allgather per size."""
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
        # the same number of calls on every rank (a rank that stopped early would leave the
        # others waiting in a collective): the median of 7 after one warm-up
        for kind, fn in (("allreduce", reduce), ("allgather", gather)):
            fn()
            out[kind].append(_timed(lambda f=fn: f().numpy(), min_s=0.0, min_reps=7, max_reps=7))
    return out


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


def measure_input(url: str, *, rows: int, reader_workers: int, max_rows: int = 50_000) -> float:
    """One rank's petastorm read rate on a prepared split (rows/s), from a shard of at most
    about ``max_rows`` of its ``rows`` rows."""
    from sparkdl.train.data import load_shard

    shards = max(1, rows // max_rows)
    start = time.perf_counter()
    x, _ = load_shard(url, rank=0, size=shards, reader_workers=reader_workers)
    return len(x) / max(time.perf_counter() - start, 1e-6)
