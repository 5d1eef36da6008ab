"""What a calibration child times: a rank's epochs as the trainer runs them, on one rank.

:func:`time_compute` runs in a fresh process (:func:`sparkdl.plan.calibrate.measure_compute`
starts it). It builds the model and its optimizer as a rank does (Horovod initialised, sparkdl's
sync exchange, which on one rank hands Horovod nothing: the step is compute alone, and the
model adds each mode's collectives to it), then times, with the trainer's own parts:

- **epochs**: a ``fit`` per epoch over a fresh :func:`~sparkdl.train.data.memory_dataset`, the
  dropout generators reseeded before each, as :mod:`sparkdl.train.worker` does. A step is the
  mean time between two batch ends (the epoch's sum is what a run pays, so the mean and not the
  median); what a ``fit`` costs besides its steps (its start, the first batch's wait for the
  iterator, its end) is the epoch's fixed part. The first ``fit`` traces the step and is left
  out.
- **validation**: the trainer's scorer (:class:`~sparkdl.train.evaluation.ShardScorer` and
  :func:`~sparkdl.train.evaluation.evaluate_everywhere`) over the trainer's evaluation pipeline
  (:func:`~sparkdl.train.data.chunks_eval_dataset`) of generated row groups, per row.
- **checkpoint**: :func:`~sparkdl.train.checkpoint.write_checkpoint` of the model and optimizer
  into a fenced folder, as rank 0 does after each epoch.
- per layer forward and backward, top-k selection and matrix products (the compressions' cost).

:func:`time_rank_steps` runs on every rank of a barrier stage when ranks share a host: the same
epochs as local SGD that never averages (:func:`stage_config`), so each rank's step is compute
alone but with the other ranks of a real Horovod world beside it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

# a calibration epoch lasts about this long (the trainer's epochs are longer; the step and the
# fixed part are what carries over); fits timed after the first, which traces the step
EPOCH_S, FITS = 0.8, 3
# local SGD's period in a calibration stage: never reached, so the ranks never average
NEVER = 1 << 40
VALIDATION_ROWS, ROW_GROUP = 20_000, 4096


def timed(fn: Any, *, min_s: float = 0.3, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median seconds of ``fn()`` over at least ``min_reps`` calls and ``min_s`` seconds.

    Examples
    --------
    >>> timed(lambda: None, min_s=0.0) < 0.01
    True
    """
    times: list[float] = []
    spent = 0.0
    while len(times) < min_reps or (spent < min_s and len(times) < max_reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return float(statistics.median(times))


def _step_timer() -> Any:
    import tensorflow as tf

    class StepTimer(tf.keras.callbacks.Callback):
        """The clock at every batch end (Keras's tensors of logs untouched: no extra sync)."""

        def __init__(self) -> None:
            super().__init__()
            self._supports_tf_logs = True
            self.ends: list[float] = []

        def on_train_begin(self, logs: Any = None) -> None:
            self.ends = []

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.ends.append(time.perf_counter())

    return StepTimer()


def time_epochs(model: Any, x: Any, y: Any, *, train: Any, steps: int) -> tuple[float, float]:
    """``(step_s, fixed_s)`` of trainer-like epochs of ``steps`` steps (medians over fits)."""

    from sparkdl.train.data import memory_dataset
    from sparkdl.train.models import start_epoch

    timer = _step_timer()
    per_fit: list[tuple[float, float]] = []
    for epoch in range(FITS + 1):
        begin = time.perf_counter()
        start_epoch(model, cfg=train, epoch=epoch)  # as the trainer
        data = memory_dataset(x, y, batch_size=train.batch_size, seed=epoch, training=True)
        model.fit(
            data,
            steps_per_epoch=steps,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            callbacks=[timer],
        )
        wall = time.perf_counter() - begin
        ends = timer.ends
        step = (ends[-1] - ends[0]) / max(1, len(ends) - 1)
        per_fit.append((step, max(0.0, wall - steps * step)))
    timed_fits = per_fit[1:]
    return (
        float(statistics.median(s for s, _ in timed_fits)),
        float(statistics.median(f for _, f in timed_fits)),
    )


def validation_row_s(
    model: Any, *, input_dim: int, classification: bool, batch: int, reps: int | None = None
) -> float:
    """Seconds per row of the trainer's validation, scorer and pipeline, on generated rows
    (over exactly ``reps`` passes when given: ranks that all-reduce the totals together)."""
    import horovod.tensorflow as hvd_tf
    import numpy as np

    from sparkdl.train.data import chunks_eval_dataset
    from sparkdl.train.evaluation import ShardScorer, evaluate_everywhere

    rng = np.random.default_rng(1)
    x = rng.normal(size=(ROW_GROUP, input_dim)).astype(np.float32)
    y = rng.integers(0, 2, size=ROW_GROUP) if classification else rng.normal(size=ROW_GROUP)
    y = y.astype(np.int32 if classification else np.float32)
    groups = VALIDATION_ROWS // ROW_GROUP
    scorer = ShardScorer(model, classification=classification)
    ranks = hvd_tf.size()  # each scores its rows; the totals are all ranks'

    def once() -> None:
        ds = chunks_eval_dataset(((x, y) for _ in range(groups)), batch_size=batch)
        evaluate_everywhere(scorer, ds, name="plan", expected_rows=ranks * groups * ROW_GROUP)

    once()  # traces the scorer
    seconds = timed(once, min_s=0.0 if reps else 0.2, min_reps=reps or 3, max_reps=reps or 10)
    return seconds / (groups * ROW_GROUP)


def checkpoint_s(model: Any, optimizer: Any) -> float:
    """Seconds of rank 0's epoch checkpoint (written, digested, renamed, pointed to)."""
    import tensorflow as tf

    from sparkdl.train.checkpoint import write_checkpoint
    from sparkdl.train.fence import claim_fence

    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    with tempfile.TemporaryDirectory(prefix="sparkdl-plan-") as tmp:
        root = os.path.join(tmp, "checkpoints")
        fence = claim_fence(root, attempt=0)
        epochs = iter(range(1000))
        return timed(
            lambda: write_checkpoint(ckpt, root=root, epoch=next(epochs), history=[], fence=fence),
            min_s=0.2,
            max_reps=10,
        )


def layer_s(model: Any, *, batch: int) -> dict[str, float]:
    """Forward and backward seconds of each layer with weights, on a batch of its input."""
    import tensorflow as tf

    layers = {}
    for layer in model.layers:
        if not layer.trainable_weights:
            continue
        if not isinstance(layer.input_shape, tuple):  # a layer of several inputs: not timed
            continue
        inp = tf.random.normal([batch, *[int(d) for d in layer.input_shape[1:]]])

        @tf.function
        def pass_(t: Any, layer: Any = layer) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(t)
                out = tf.reduce_sum(layer(t, training=True))
            return tape.gradient(out, [t, *layer.trainable_weights])

        pass_(inp)
        layers[layer.name] = timed(lambda p=pass_, i=inp: [g.numpy() for g in p(i)])
    return layers


def rates() -> dict[str, float]:
    """Top-k selection (values scanned per second) and float32 matrix-product FLOP/s."""
    import tensorflow as tf

    big = tf.random.normal([1 << 20])
    topk = tf.function(lambda t: tf.math.top_k(tf.abs(t), k=1 << 13).indices)
    topk(big)
    a, m = tf.random.normal([1024, 512]), tf.random.normal([512, 64])
    mm = tf.function(lambda p, q: tf.matmul(p, q))
    mm(a, m)
    return {
        "topk_values_per_s": (1 << 20) / timed(lambda: topk(big).numpy()),
        "matmul_flops": 2 * 1024 * 512 * 64 / timed(lambda: mm(a, m).numpy()),
    }


def calibration_config(train: Any) -> Any:
    """``train`` in sync mode without compression: the calibration's step (the modes'
    exchanges are modelled on top of it). Mode-only keys go back to their defaults.

    Examples
    --------
    >>> from sparkdl.config.train import TrainConfig
    >>> got = calibration_config(TrainConfig(mode="accumulate", accumulate_steps=4))
    >>> got.mode, got.accumulate_steps
    ('sync', 1)
    """
    import dataclasses

    return dataclasses.replace(train, mode="sync", compression="none", accumulate_steps=1)


def time_compute(
    train: Any,
    input_dim: int,
    num_classes: int,
    threads: int,
    model_fn: Any,
    steps_only: bool = False,
) -> dict[str, Any]:
    """Runs in the child: every measurement, as plain values (with ``steps_only``, the epochs
    alone: the other copies of a shared-host calibration without a Spark session)."""
    model, opt, x, y = _rank_model(
        calibration_config(train), input_dim, num_classes, threads, model_fn
    )
    steps = _epoch_steps(_rough_step(model, x, y, batch=train.batch_size))
    step_s, fixed_s = time_epochs(model, x, y, train=train, steps=steps)
    if steps_only:
        return {"step_s": step_s, "fit_s": fixed_s}
    return {
        "step_s": step_s,
        "fit_s": fixed_s,
        "forward_row_s": _validation(model, train, input_dim, num_classes),
        **_rank0_parts(model, opt, train),
    }


def stage_config(train: Any) -> Any:
    """``train`` as local SGD that never averages: the ranks of a barrier stage step side by
    side with no collective between them (each step is compute alone, as on one rank).

    Examples
    --------
    >>> from sparkdl.config.train import TrainConfig
    >>> got = stage_config(TrainConfig(mode="accumulate", accumulate_steps=4))
    >>> got.mode, got.local_sgd_period > 10**9, got.local_sgd_warmup_epochs
    ('local_sgd', True, 0)
    """
    import dataclasses

    return dataclasses.replace(
        calibration_config(train),
        mode="local_sgd",
        local_sgd_period=NEVER,
        local_sgd_warmup_epochs=0,
    )


def time_rank_steps(
    train: Any, input_dim: int, num_classes: int, threads: int, model_fn: Any
) -> dict[str, Any]:
    """Runs on every rank of a barrier stage (:func:`sparkdl.plan.calibrate.measure_compute`
    with a session): the epochs of :func:`time_epochs`, the same number of steps on every rank
    (rank 0's), with :func:`stage_config`'s mode; then validation on every rank at once (as the
    trainer validates), and rank 0 alone measures the rest, as :func:`time_compute` does. Rank
    0 returns everything, with ``ranks``: every rank's ``step_s`` and ``fit_s``. A model that
    cannot be built returns ``{"error": message, "class": its error's class}`` on every rank
    (each builds the same model, so none enters a collective).
    """
    import horovod.tensorflow as hvd_tf

    cfg = stage_config(train)
    try:
        model, opt, x, y = _rank_model(cfg, input_dim, num_classes, threads, model_fn)
    except Exception as exc:  # any failure to build: the driver raises it
        return {"error": str(exc), "class": type(exc).__name__}
    steps = hvd_tf.broadcast_object(_epoch_steps(_rough_step(model, x, y, batch=cfg.batch_size)))
    step_s, fixed_s = time_epochs(model, x, y, train=cfg, steps=steps)
    ranks = list(hvd_tf.allgather_object({"step_s": step_s, "fit_s": fixed_s}))
    # every rank validates at once, as in the trainer (its totals are all-reduced)
    row_s = _validation(model, cfg, input_dim, num_classes)
    if hvd_tf.rank() != 0:
        return {}
    return {"ranks": ranks, "forward_row_s": row_s, **_rank0_parts(model, opt, cfg)}


def _validation(model: Any, train: Any, input_dim: int, num_classes: int) -> float:
    import horovod.tensorflow as hvd_tf

    return validation_row_s(
        model,
        input_dim=input_dim,
        classification=num_classes > 1,
        batch=train.batch_size,
        reps=5 if hvd_tf.size() > 1 else None,
    )


def _rank0_parts(model: Any, opt: Any, train: Any) -> dict[str, Any]:
    """What rank 0 alone measures besides its epochs and validation: the checkpoint, the
    layers, the compressions' rates, the weights' shapes and the device."""
    import tensorflow as tf

    return {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "checkpoint_s": checkpoint_s(model, opt),
        "layers": layer_s(model, batch=train.batch_size),
        **rates(),
        "shapes": [tuple(int(d) for d in w.shape) for w in model.trainable_weights],
    }


def _rank_model(
    cfg: Any, input_dim: int, num_classes: int, threads: int, model_fn: Any
) -> tuple[Any, Any, Any, Any]:
    """A rank's model and optimizer, built as the trainer builds them (Horovod initialised,
    ``cfg``'s mode), and generated rows to train on: ``(model, optimizer, x, y)``."""
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    from sparkdl.train.models import build_model, compile_for_training, make_optimizer
    from sparkdl.train.modes import wrap_optimizer

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    model = build_model(
        cfg.model, input_dim=input_dim, num_classes=num_classes, seed=cfg.seed, fn=model_fn
    )
    hvd.init()
    opt, state = wrap_optimizer(make_optimizer(cfg, cfg.learning_rate), cfg=cfg, model=model)
    compile_for_training(model, opt, num_classes=num_classes)
    state.build(opt)
    rng = np.random.default_rng(0)
    rows = calibration_rows(cfg.batch_size, input_dim)
    x = rng.normal(size=(rows, input_dim)).astype(np.float32)
    y = rng.integers(0, max(2, num_classes), size=rows).astype(np.int32)
    return model, opt, x, y if num_classes > 1 else y.astype(np.float32)


def calibration_rows(batch: int, input_dim: int) -> int:
    """Rows a calibration rank trains on: about a rank's shard in memory (64 batches, at least
    65,536 rows: the batches are gathered from it, and a larger array misses the caches more),
    at most 64 MiB of features (and at least one batch).

    Examples
    --------
    >>> calibration_rows(128, 22), calibration_rows(2048, 22), calibration_rows(128, 1 << 16)
    (65536, 131072, 256)
    """
    cap = (64 << 20) // (4 * max(1, input_dim))
    return min(max(64 * batch, 65_536), max(cap, batch))


def _epoch_steps(rough_s: float) -> int:
    """Steps of a calibration epoch of about :data:`EPOCH_S` at ``rough_s`` a step."""
    return max(20, min(2000, int(EPOCH_S / max(rough_s, 1e-5))))


def _rough_step(model: Any, x: Any, y: Any, *, batch: int) -> float:
    """A first fit (traces the step) and its rough step time, to size the timed epochs."""
    from sparkdl.train.data import memory_dataset

    timer = _step_timer()
    data = memory_dataset(x, y, batch_size=batch, seed=0, training=True)
    model.fit(data, steps_per_epoch=12, epochs=1, verbose=0, callbacks=[timer])
    return (timer.ends[-1] - timer.ends[1]) / (len(timer.ends) - 2)
