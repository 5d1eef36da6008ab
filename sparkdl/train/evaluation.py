"""Exact validation and test metrics of a rank: every row of every shard, scored once.

Each rank scores its whole shard (full batches and a last short one, see
:func:`sparkdl.train.data.eval_dataset`) into three sums, the loss summed over rows, the correct
predictions (classification) or absolute errors (regression), and the row count, and one
Horovod all-reduce (``Sum``) adds them up across ranks. Ranks may hold different row counts and
run different numbers of batches: none waits for another until that single all-reduce, which
every rank reaches once per evaluation. The metrics are then the sums over the rows, where an
average of per-rank averages (Keras's ``evaluate`` on each rank, then Horovod's
``MetricAverageCallback``) weighs a short shard as much as a long one.
"""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf

from sparkdl.errors import InfraError

logger = logging.getLogger(__name__)

# Index of each sum in a totals vector.
LOSS, SCORE, ROWS = 0, 1, 2


def metric_names(*, classification: bool) -> tuple[str, str]:
    """The Keras names of the loss and the metric the trainer compiles with.

    Examples
    --------
    >>> metric_names(classification=True), metric_names(classification=False)
    (('loss', 'accuracy'), ('loss', 'mae'))
    """
    return ("loss", "accuracy") if classification else ("loss", "mae")


def finish_metrics(
    totals: Any, *, classification: bool, extra_loss: float = 0.0
) -> tuple[dict[str, float], int]:
    """Metrics and the row count they cover from summed totals ``[loss, score, rows]``.

    ``extra_loss`` is the model's regularisation loss, which Keras adds once to the mean.

    Examples
    --------
    >>> finish_metrics([12.0, 3.0, 4.0], classification=True)
    ({'loss': 3.0, 'accuracy': 0.75}, 4)
    >>> finish_metrics([0.0, 0.0, 0.0], classification=False)
    ({'loss': 0.0, 'mae': 0.0}, 0)
    """
    loss_name, score_name = metric_names(classification=classification)
    rows = round(float(totals[ROWS]))
    if rows == 0:
        return {loss_name: 0.0, score_name: 0.0}, 0
    return {
        loss_name: float(totals[LOSS]) / rows + extra_loss,
        score_name: float(totals[SCORE]) / rows,
    }, rows


class ShardScorer:
    """Sum a model's loss, score and rows over one rank's evaluation dataset.

    The step is one compiled function for every batch size (the last batch is short), and it
    moves the model's test-step counter, so the driver's stall watcher sees a rank that
    evaluates as making progress.
    """

    def __init__(self, model: Any, *, classification: bool) -> None:
        self.model = model
        self.classification = classification
        self._step: Any = None

    def _make_step(self, spec: Any) -> Any:
        model, classification = self.model, self.classification
        counter = getattr(model, "_test_counter", None)

        def step(x: Any, y: Any) -> Any:
            out = model(x, training=False)
            if classification:
                losses = tf.keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True)
                hit = tf.cast(tf.argmax(out, axis=-1), y.dtype) == y
                score = tf.reduce_sum(tf.cast(hit, tf.float64))
            else:
                target = tf.reshape(tf.cast(y, out.dtype), (-1, 1))
                err = tf.reshape(out, (tf.shape(out)[0], -1)) - target
                losses = tf.reduce_mean(tf.square(err), axis=-1)
                score = tf.reduce_sum(tf.cast(tf.reduce_mean(tf.abs(err), axis=-1), tf.float64))
            if counter is not None:
                counter.assign_add(1)
            rows = tf.cast(tf.shape(out)[0], tf.float64)
            return tf.stack([tf.reduce_sum(tf.cast(losses, tf.float64)), score, rows])

        return tf.function(step, input_signature=list(spec))

    def totals(self, dataset: Any) -> Any:
        """``[loss sum, score sum, rows]`` (float64) over ``dataset``; zeros when it is None."""
        acc = tf.zeros(3, tf.float64)
        if dataset is None:
            return acc
        if self._step is None:
            self._step = self._make_step(dataset.element_spec)
        for x, y in dataset:
            acc += self._step(x, y)
        return acc

    def extra_loss(self) -> float:
        """The regularisation losses Keras adds to the compiled loss."""
        return float(tf.add_n(self.model.losses)) if self.model.losses else 0.0


def evaluate_everywhere(
    scorer: ShardScorer, dataset: Any, *, name: str, expected_rows: int
) -> tuple[dict[str, float], int]:
    """Score this rank's shard, add every rank's totals (one Horovod ``Sum``), finish metrics.

    Every rank must call it once per evaluation, with or without rows of its own.

    Raises
    ------
    InfraError
        On every rank alike, when the ranks together scored other than ``expected_rows`` rows
        (a reader lost or repeated a row group): the attempt fails and is retried.

    Examples
    --------
    >>> with eval_dataset(url, rank=r, size=n, batch_size=64, reader_workers=1) as ds:
    ...     metrics, rows = evaluate_everywhere(ShardScorer(model, classification=True), ds,
    ...                                         name="test", expected_rows=181)  # doctest: +SKIP
    """
    import horovod.tensorflow as hvd

    local = scorer.totals(dataset)
    summed = hvd.allreduce(local, op=hvd.Sum, name=f"sparkdl_eval_{name}").numpy()
    metrics, rows = finish_metrics(
        summed, classification=scorer.classification, extra_loss=scorer.extra_loss()
    )
    logger.info("%s: %s over %d rows (%d on this rank)", name, metrics, rows, int(local[ROWS]))
    if rows != expected_rows:
        raise InfraError(
            f"the {name} metrics cover {rows} rows but the {name} split has {expected_rows}; a "
            "reader lost or repeated rows (the attempt fails and is retried)"
        )
    return metrics, rows


class ExactValidation(tf.keras.callbacks.Callback):
    """Put exact ``val_*`` metrics into each epoch's logs (no batch hooks).

    Set :attr:`dataset` to the epoch's validation dataset before ``fit``; at the epoch's end the
    metrics join the logs, so the callbacks after this one (history, checkpoints, progress,
    TensorBoard) see them. Place it after Horovod's ``MetricAverageCallback``, which would
    otherwise average the already global values once more.
    """

    def __init__(self, scorer: ShardScorer, *, expected_rows: int) -> None:
        super().__init__()
        self.scorer = scorer
        self.expected_rows = expected_rows
        self.dataset: Any = None
        self.rows = 0
        self._pending = False

    def set_epoch_dataset(self, dataset: Any) -> None:
        """The dataset to score at the end of the coming epoch (every rank calls it)."""
        self.dataset = dataset
        self._pending = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._pending:
            return
        self._pending = False
        metrics, self.rows = evaluate_everywhere(
            self.scorer, self.dataset, name="validation", expected_rows=self.expected_rows
        )
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in metrics.items()})
        self.dataset = None
