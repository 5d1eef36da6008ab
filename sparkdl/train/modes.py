"""Training modes: when the ranks exchange, and what (``train.mode``, ``train.compression``).

:func:`wrap_optimizer` makes the rank's Keras optimizer one that runs the mode inside its
``apply_gradients`` (in the training step's ``tf.function``); :class:`ModeState` holds what the
mode keeps between steps. The rules of each mode:

``sync``
    Every step, the gradients are averaged over the ranks (the exchange of
    ``train.compression``: dense fp32 or fp16, top-k, PowerSGD; :mod:`sparkdl.train.exchange`)
    and every rank applies the same update. The rate is ``train.learning_rate`` times the number
    of ranks with ``train.scale_lr`` (the global batch is ``batch_size x ranks``).
``accumulate``
    ``train.accumulate_steps`` (k) backward passes per exchange: the k gradients of a rank are
    averaged locally, then exchanged once; the optimizer steps once per k batches (its
    ``iterations`` and slots advance once). The global batch is ``k x batch_size x ranks``; the
    rate rule is sync's (scale ``train.learning_rate`` for the larger batch yourself). An epoch
    whose batches are no multiple of k applies its last, partial group at its end, so no
    gradient is carried from one epoch into the next.
``local_sgd``
    Every rank steps on its own gradients; every ``train.local_sgd_period`` (H) steps and at
    every epoch's end, the ranks average their weights *and optimizer state* (momentum, Adam's
    moments: averaged, never reset) in one all-reduce. The rate is sync's. With H = 1 and a
    linear optimizer state (SGD with momentum) it equals ``sync``. Post-local SGD (Lin et al.,
    ICLR 2020): ``train.local_sgd_warmup_epochs`` first epochs run ``sync``, then local SGD.

Every mode counts what its collectives carry (:class:`sparkdl.train.exchange.Traffic`). At an
epoch's end the ranks hold the same weights and optimizer state in every mode; what differs
between ranks (the error-feedback residuals of ``topk`` and ``powersgd``) is gathered to rank 0
for the checkpoint (:func:`gather_rank_state`) and handed back on resume
(:func:`scatter_rank_state`), so a resumed run gives the weights of an uninterrupted one.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import horovod.tensorflow as hvd
import numpy as np
import tensorflow as tf

from sparkdl.config.train import TrainConfig
from sparkdl.train.exchange import Traffic, make_exchange

logger = logging.getLogger(__name__)

RANK_STATE = "rank-state.npz"  # in a checkpoint's folder: every rank's residuals


class ModeState(tf.Module):
    """What a mode keeps between steps on one rank, and the steps themselves."""

    def __init__(self, cfg: TrainConfig, model: Any) -> None:
        super().__init__(name="sparkdl_mode")
        self.cfg = cfg
        self.trainable = list(model.trainable_variables)
        self.model_floats = [v for v in model.variables if v.dtype.is_floating]
        self.traffic = Traffic()
        self.exchange = make_exchange(
            cfg.compression,
            self.trainable,
            self.traffic,
            density=cfg.topk_density,
            rank=cfg.powersgd_rank,
            seed=cfg.seed,
        )
        self.passes = tf.Variable(0, dtype=tf.int64, trainable=False, name="passes")
        self.local_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="local_steps")
        self.warming = tf.Variable(cfg.local_sgd_warmup_epochs > 0, trainable=False, name="warming")
        self.sums = (
            [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in self.trainable]
            if cfg.mode == "accumulate"
            else []
        )
        self._averaged: list[tf.Variable] = []
        self._base_apply: Any = None
        self._finish = tf.function(self._finish_epoch)

    # ---- wiring ---------------------------------------------------------------------------
    def build(self, optimizer: Any) -> None:
        """Create ``optimizer``'s slots now (before the first step) and know them: local SGD
        averages them, and an epoch's last partial accumulation is applied through it."""
        optimizer._create_all_weights(self.trainable)
        slots = [v for v in optimizer.variables() if v.dtype.is_floating]
        self._averaged = self.model_floats + slots
        self._base_apply = lambda grads: optimizer.apply_unwrapped(
            list(zip(grads, self.trainable, strict=True))
        )

    def shared(self) -> list[tf.Variable]:
        """The state every rank holds the same (PowerSGD's factors): broadcast, checkpointed."""
        return self.exchange.shared_state()

    def checkpointed(self) -> dict[str, Any]:
        """Extra objects for ``tf.train.Checkpoint`` (the state every rank shares)."""
        shared = self.shared()
        return {"sparkdl_mode": tf.train.Checkpoint(factors=shared)} if shared else {}

    def per_rank(self) -> list[tf.Variable]:
        """The state that differs between ranks (error-feedback residuals)."""
        return self.exchange.per_rank_state()

    def set_epoch(self, epoch: int) -> None:
        """Post-local SGD: sync during the warm-up epochs."""
        self.warming.assign(epoch < self.cfg.local_sgd_warmup_epochs)

    # ---- one step (traced into the training step) -------------------------------------------
    def step(self, apply: Any, grads: list[tf.Tensor]) -> Any:
        self.traffic.batches.assign_add(1)
        mode = self.cfg.mode
        if mode == "accumulate":
            for total, g in zip(self.sums, grads, strict=True):
                total.assign_add(g)
            self.passes.assign_add(1)
            return tf.cond(
                self.passes >= self.cfg.accumulate_steps,
                lambda: self._apply_sums(apply),
                lambda: tf.constant(False),
            )
        if mode == "local_sgd":
            return tf.cond(
                self.warming.read_value(),
                lambda: self._applied(apply(self.exchange(grads))),
                lambda: self._local(apply, grads),
            )
        return apply(self.exchange(grads))

    def _applied(self, op: Any) -> tf.Tensor:
        with tf.control_dependencies([op]):
            return tf.constant(True)

    def _apply_sums(self, apply: Any) -> tf.Tensor:
        n = tf.cast(self.passes, self.sums[0].dtype)
        op = apply(self.exchange([total / n for total in self.sums]))
        with tf.control_dependencies([op]):
            for total in self.sums:
                total.assign(tf.zeros_like(total))
            self.passes.assign(0)
            return tf.constant(True)

    def _local(self, apply: Any, grads: list[tf.Tensor]) -> tf.Tensor:
        op = apply(grads)
        with tf.control_dependencies([op]):
            n = self.local_steps.assign_add(1)
        period = self.cfg.local_sgd_period
        return tf.cond(n % period == 0, self._average, lambda: tf.constant(False))

    def _average(self) -> tf.Tensor:
        """Average every float variable of the model and the optimizer (one all-reduce)."""
        flat = tf.concat([tf.reshape(v, [-1]) for v in self._averaged], 0)
        mean = self.traffic.average(flat, name="local_sgd_average")
        parts = tf.split(mean, [int(np.prod(v.shape)) for v in self._averaged])
        for v, p in zip(self._averaged, parts, strict=True):
            v.assign(tf.reshape(p, v.shape))
        return tf.constant(True)

    # ---- the epoch's end (every rank) -----------------------------------------------------
    def _finish_epoch(self) -> tf.Tensor:
        if self.cfg.mode == "accumulate":
            return tf.cond(
                self.passes > 0,
                lambda: self._apply_sums(self._base_apply),
                lambda: tf.constant(False),
            )
        if self.cfg.mode == "local_sgd":
            pending = tf.logical_and(tf.logical_not(self.warming), self.local_steps > 0)
            done = tf.cond(
                tf.logical_and(pending, self.local_steps % self.cfg.local_sgd_period != 0),
                self._average,
                lambda: tf.constant(False),
            )
            with tf.control_dependencies([done]):
                self.local_steps.assign(0)
                return tf.identity(done)
        return tf.constant(False)

    def finish_epoch(self) -> None:
        """Apply a partial accumulation, or average the ranks' local models: every rank, at
        the end of every epoch, before validation and the checkpoint."""
        if self.cfg.mode in ("accumulate", "local_sgd"):
            self._finish()


def wrap_optimizer(optimizer: Any, *, cfg: TrainConfig, model: Any) -> tuple[Any, ModeState]:
    """``optimizer`` (a Keras legacy optimizer) made to train in ``cfg``'s mode.

    Returns the new optimizer (same class name and config) and the mode's state; call
    ``state.build(optimizer)`` once the optimizer is compiled into the model.
    """
    base = type(optimizer)
    state = ModeState(cfg, model)

    def apply_gradients(self: Any, grads_and_vars: Any, name: Any = None, **kwargs: Any) -> Any:
        pairs = list(grads_and_vars)
        variables = [v for _, v in pairs]
        if len(variables) != len(state.trainable):
            raise ValueError(
                f"sparkdl train.mode={cfg.mode}: the optimizer got {len(variables)} variables, "
                f"the model has {len(state.trainable)} trainable ones"
            )
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in pairs]

        def apply(gs: list[tf.Tensor]) -> Any:
            return base.apply_gradients(
                self, list(zip(gs, variables, strict=True)), name=name, **kwargs
            )

        return state.step(apply, grads)

    def apply_unwrapped(self: Any, grads_and_vars: Any) -> Any:
        """The optimizer's own step, without the mode (an epoch's last partial accumulation)."""
        return base.apply_gradients(self, grads_and_vars)

    methods = {"apply_gradients": apply_gradients, "apply_unwrapped": apply_unwrapped}
    cls = type(base.__name__, (base,), methods)
    return cls.from_config(optimizer.get_config()), state


# ---- per-rank state in checkpoints ---------------------------------------------------------
def gather_rank_state(state: ModeState) -> bytes | None:
    """Every rank: allgather the per-rank state; rank 0 gets it as one ``.npz`` (else None)."""
    own = [v.numpy() for v in state.per_rank()]
    everyone = hvd.allgather_object(own, name="sparkdl_rank_state")
    if hvd.rank() != 0 or not own:
        return None
    buf = io.BytesIO()
    arrays = {f"rank{r}_{i}": a for r, arrs in enumerate(everyone) for i, a in enumerate(arrs)}
    np.savez(buf, ranks=np.array(len(everyone)), **arrays)
    return buf.getvalue()


def scatter_rank_state(state: ModeState, checkpoint_prefix: str | None) -> None:
    """Every rank, on resume: rank 0 reads the checkpoint's per-rank state (beside
    ``checkpoint_prefix``) and each rank takes its own."""
    if not state.per_rank():
        return
    saved = None
    if hvd.rank() == 0 and checkpoint_prefix is not None:
        path = Path(checkpoint_prefix).parent / RANK_STATE
        if path.is_file():
            with np.load(path) as npz:
                saved = {k: npz[k] for k in npz.files}
    saved = hvd.broadcast_object(saved, root_rank=0, name="sparkdl_rank_state_resume")
    if saved is None:
        return
    ranks, rank = int(saved["ranks"]), hvd.rank()
    if ranks != hvd.size():
        logger.warning(
            "the checkpoint holds the residuals of %d ranks, this attempt has %d: they start "
            "at zero (the resumed run differs from an uninterrupted one)",
            ranks,
            hvd.size(),
        )
        return
    for i, v in enumerate(state.per_rank()):
        v.assign(saved[f"rank{rank}_{i}"])


class ModeEpochs(tf.keras.callbacks.Callback):
    """Every rank, first among the callbacks: the mode's epoch start (post-local SGD's warm-up)
    and end (a partial accumulation, the local models' average), then the gathering of the
    per-rank state for rank 0's checkpoint (``rank_state``: the ``.npz`` bytes, or None)."""

    def __init__(self, state: ModeState) -> None:
        super().__init__()
        self.state = state
        self.rank_state: bytes | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.state.set_epoch(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.state.finish_epoch()
        if self.state.per_rank():
            self.rank_state = gather_rank_state(self.state)

    def checkpoint_files(self) -> dict[str, bytes]:
        """What rank 0's checkpoint of this epoch holds beside ``ckpt.*``."""
        return {RANK_STATE: self.rank_state} if self.rank_state is not None else {}
