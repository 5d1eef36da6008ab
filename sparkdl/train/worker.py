"""What each Horovod rank runs: read its shard, train, checkpoint, report, evaluate.

Imported on the driver only for :class:`WorkerSpec`; TensorFlow and Horovod are imported inside
:func:`train_rank`, in the rank's child process, after its environment is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sparkdl.config.train import TrainConfig
from sparkdl.train.card import ModelCard
from sparkdl.train.checkpoint import NO_FENCE, CheckpointInfo, Fence
from sparkdl.train.result import RankResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a rank needs, as plain values (built on the driver, pickled to the ranks)."""

    train: TrainConfig
    train_url: str
    validation_url: str | None
    test_url: str | None
    input_dim: int
    num_classes: int
    steps_per_epoch: int
    # rows of the validation and test splits (every row is scored; 0 without the split)
    validation_rows: int
    test_rows: int
    # where rank 0 publishes: URIs or shared paths on the store (sparkdl.store)
    checkpoint_dir: str
    export_dir: str
    tensorboard_dir: str
    attempt: int
    heartbeat_timeout_s: float = 300.0
    # The attempt's checkpoint fence (set by the driver for every attempt; rank 0 publishes
    # checkpoints and the model only while it is current).
    fence: Fence = NO_FENCE
    # the checkpoint to resume from (rank 0 copies it to its node), its epoch and history
    resume: CheckpointInfo | None = None
    resume_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)
    # written into the exported model folder by rank 0 (set by the driver)
    card: ModelCard | None = None
    # a model function given as a Python object (cloudpickled with the spec), else None
    model_fn: Any = None


def _weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()


def _should_stop(history: list[dict[str, float]], *, patience: int) -> bool:
    """Early stopping on ``val_loss`` across epochs (and across resumed attempts).

    Examples
    --------
    >>> _should_stop([{"val_loss": 1.0}, {"val_loss": 1.1}, {"val_loss": 1.2}], patience=2)
    True
    """
    losses = [h["val_loss"] for h in history if "val_loss" in h]
    if not patience or len(losses) <= patience:
        return False
    best = min(range(len(losses)), key=losses.__getitem__)
    return len(losses) - 1 - best >= patience


def train_rank(spec: WorkerSpec) -> RankResult:
    """Train on this rank's shard; rank 0 returns the history, test metrics and export path.

    Every rank returns its weight digest through an allgather, so rank 0's result also shows
    whether all ranks ended with identical weights.
    """
    import warnings

    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    from sparkdl.train.ahead import Ahead
    from sparkdl.train.callbacks import (
        CheckpointCallback,
        EpochRecorder,
        EventSync,
        FaultInjector,
        ProgressReporter,
        start_heartbeat,
    )
    from sparkdl.train.card import write_card
    from sparkdl.train.checkpoint import fetch_checkpoint, publish_folder, restore_checkpoint
    from sparkdl.train.data import eval_dataset, load_shard, memory_dataset, rank_dataset
    from sparkdl.train.evaluation import ExactValidation, ShardScorer, evaluate_everywhere
    from sparkdl.train.models import (
        build_model,
        compile_for_training,
        make_optimizer,
        start_epoch,
    )
    from sparkdl.train.modes import (
        ModeEpochs,
        scatter_rank_state,
        wrap_optimizer,
    )

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    cfg = spec.train
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [rank {rank} attempt {spec.attempt}] %(name)s: %(message)s",
        force=True,
    )
    # petastorm's use of pyarrow's legacy dataset API warns on every read; pyarrow is pinned.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(petastorm|pyarrow)\b.*")
    logging.getLogger("petastorm").setLevel(logging.WARNING)
    threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    start = time.perf_counter()

    model = build_model(
        cfg.model,
        input_dim=spec.input_dim,
        num_classes=spec.num_classes,
        seed=cfg.seed,
        fn=spec.model_fn,
    )
    lr = cfg.learning_rate * (size if cfg.scale_lr else 1)
    # The mode (sync, accumulate, local SGD) and gradient exchange run inside the optimizer's
    # apply_gradients (sparkdl.train.modes), counting what every collective carries.
    opt, mode = wrap_optimizer(make_optimizer(cfg, lr), cfg=cfg, model=model)
    classification = spec.num_classes > 1
    compile_for_training(model, opt, num_classes=spec.num_classes)
    # This node's staging folder (the rank's own temporary folder): checkpoints, the model and
    # TensorBoard events are written here first, then published to the store.
    staging = tempfile.gettempdir()
    local = None
    if spec.resume is not None and rank == 0:
        # Rank 0 copies the checkpoint to its node and must restore it (a missing or damaged
        # one is an error, never a fresh start); the other ranks get its state from the
        # broadcast below. Optimizer slots are restored when first created (deferred restore).
        local = fetch_checkpoint(spec.resume, staging=staging)
        restore_checkpoint(
            tf.train.Checkpoint(model=model, optimizer=model.optimizer, **mode.checkpointed()),
            path=local,
            required=True,
            shown=spec.resume.path,
        )
        logger.info("resumed from %s after epoch %d", spec.resume.path, spec.resume_epoch)

    history: list[dict[str, float]] = list(spec.history)
    # Start every attempt from rank 0's state: weights and (built up front) optimizer slots.
    mode.build(model.optimizer)
    shared = model.variables + model.optimizer.variables() + mode.shared()
    hvd_tf.broadcast_variables(shared, root_rank=0)
    # the residuals of each rank (top-k, PowerSGD), from rank 0's copy of the checkpoint
    scatter_rank_state(mode, local)
    # Only callbacks without per-batch hooks run every epoch: a batch hook makes Keras return
    # to Python and sync the loss after every step. Validation scores every row at the epoch's
    # end (after the training metrics are averaged; see sparkdl.train.evaluation).
    scorer = ShardScorer(model, classification=classification)
    validation = ExactValidation(scorer, expected_rows=spec.validation_rows)
    epochs_cb = ModeEpochs(mode)  # first: validation and the checkpoint see its average
    callbacks: list[Any] = [
        epochs_cb,
        hvd.callbacks.MetricAverageCallback(),
        validation,
        EpochRecorder(history),
    ]
    if cfg.fault.kind != "none":
        callbacks.append(FaultInjector(cfg.fault, rank=rank, attempt=spec.attempt))
    addr = os.environ.get("HOROVOD_GLOO_RENDEZVOUS_ADDR")
    port = int(os.environ.get("HOROVOD_GLOO_RENDEZVOUS_PORT", "0"))
    if addr:
        interval = max(1.0, min(10.0, spec.heartbeat_timeout_s / 5))
        start_heartbeat(model, addr=addr, port=port, rank=rank, interval_s=interval)
    if rank == 0:
        callbacks.append(
            CheckpointCallback(
                fence=spec.fence,
                history=history,
                optimizer=model.optimizer,
                staging=staging,
                extra=mode.checkpointed(),
                files=epochs_cb.checkpoint_files,
            )
        )
        if addr:
            callbacks.append(
                ProgressReporter(
                    addr=addr,
                    port=port,
                    attempt=spec.attempt,
                    epochs=cfg.epochs,
                    history=history,
                )
            )
        if cfg.tensorboard:
            events = tempfile.mkdtemp(prefix="sparkdl-tensorboard-", dir=staging)
            callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=events, update_freq="epoch"))
            callbacks.append(EventSync(events, target=spec.tensorboard_dir, fence=spec.fence))
    warmup = hvd.callbacks.LearningRateWarmupCallback(
        initial_lr=lr, warmup_epochs=cfg.warmup_epochs, steps_per_epoch=spec.steps_per_epoch
    )

    eval_args = {
        "rank": rank,
        "size": size,
        "batch_size": cfg.batch_size,
        "reader_workers": cfg.reader_workers,
    }
    ds_args = {**eval_args, "shuffle_buffer": cfg.shuffle_buffer}
    memory = None
    if cfg.data_source == "memory":
        memory = load_shard(spec.train_url, rank=rank, size=size, reader_workers=cfg.reader_workers)

    @contextlib.contextmanager
    def epoch_readers(epoch: int) -> Iterator[tuple[Any, Any]]:
        """Epoch ``epoch``'s training and validation datasets (validation None without one)."""
        with contextlib.ExitStack() as stack:
            if memory is not None:
                train = memory_dataset(
                    *memory, batch_size=cfg.batch_size, seed=cfg.seed + epoch, training=True
                )
            else:
                train = stack.enter_context(
                    rank_dataset(
                        spec.train_url,
                        steps=spec.steps_per_epoch,
                        seed=cfg.seed + epoch,
                        training=True,
                        **ds_args,
                    )
                )
            val = None
            if spec.validation_url:
                val = stack.enter_context(eval_dataset(spec.validation_url, **eval_args))
            yield train, val

    def open_ahead(epoch: int) -> Ahead[tuple[Any, Any]] | None:
        """Start opening epoch ``epoch``'s datasets on a thread (None once past the last epoch)."""
        if epoch >= cfg.epochs:
            return None
        return Ahead(lambda: epoch_readers(epoch), name=f"sparkdl-readers-epoch-{epoch}")

    fit_start = time.perf_counter()
    # Each epoch's readers are opened while the epoch before it trains (holding that epoch's
    # first row groups in memory meanwhile), so no rank waits for petastorm between two epochs.
    ahead = open_ahead(spec.resume_epoch + 1)
    try:
        for epoch in range(spec.resume_epoch + 1, cfg.epochs):
            # Data order and dropout depend on the epoch alone, so an attempt that resumes after
            # epoch k replays epochs k+1.. as an uninterrupted run would.
            start_epoch(model, cfg=cfg, epoch=epoch)
            with ahead as this_epoch:  # opened during the epoch before (or just above)
                train_ds, val_ds = this_epoch.take()
                ahead = open_ahead(epoch + 1)
                if spec.validation_url:
                    validation.set_epoch_dataset(val_ds)
                model.fit(
                    train_ds,
                    steps_per_epoch=spec.steps_per_epoch,
                    epochs=epoch + 1,
                    initial_epoch=epoch,
                    # The warm-up adjusts the rate every batch: only during the warm-up epochs.
                    callbacks=[*callbacks, warmup] if epoch < cfg.warmup_epochs else callbacks,
                    verbose=0,
                )
            if _should_stop(history, patience=cfg.early_stopping_patience):
                logger.info("early stopping after epoch %d (train.early_stopping_patience)", epoch)
                break
    finally:
        if ahead is not None:  # early stopping, or an error in the epoch
            ahead.close()

    fit_seconds = time.perf_counter() - fit_start
    test_metrics: dict[str, float] = {}
    test_rows = 0
    if spec.test_url:
        with eval_dataset(spec.test_url, **eval_args) as test_ds:
            test_metrics, test_rows = evaluate_everywhere(
                scorer, test_ds, name="test", expected_rows=spec.test_rows
            )
    digests = hvd_tf.allgather_object(_weights_digest(model))
    traffic = hvd_tf.allgather_object(mode.traffic.snapshot())
    new_epochs = len(history) - len(spec.history)
    if rank == 0:
        # Fenced like the checkpoints: a given-up attempt cannot replace the model.
        def save(path: str) -> None:
            model.save(path, include_optimizer=False)
            if spec.card is not None:  # the card travels with the model it describes
                write_card(path, spec.card)

        publish_folder(save, target=spec.export_dir, fence=spec.fence, staging=staging)
    hvd.shutdown()
    return RankResult(
        history=history,
        test=dict(sorted(test_metrics.items())),
        test_rows=test_rows,
        validation_rows=validation.rows,
        weight_digests=list(digests),
        export_dir=spec.export_dir,
        fit_seconds=fit_seconds,
        samples=new_epochs * spec.steps_per_epoch * cfg.batch_size * size,
        memory_rows=0 if memory is None else len(memory[1]),
        workers=size,
        seconds=time.perf_counter() - start,
        traffic=list(traffic),
        parameters=int(sum(np.prod(v.shape) for v in model.trainable_variables)),
    )
