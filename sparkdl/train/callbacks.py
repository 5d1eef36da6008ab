"""Keras callbacks of a rank: checkpoints, progress to the driver, fault injection."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from sparkdl.config.train import FaultConfig
from sparkdl.launch.watch import HEARTBEAT_SCOPE, REPORT_SCOPE, send
from sparkdl.train.checkpoint import Fence, sync_folder, write_checkpoint

logger = logging.getLogger(__name__)


def _clean(logs: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


class EpochRecorder(tf.keras.callbacks.Callback):
    """Keep the per-epoch history with timings: training metrics after Horovod averaged them,
    ``val_*`` over every validation row (:class:`sparkdl.train.evaluation.ExactValidation`).

    ``seconds`` is the epoch itself (Keras's epoch begin to end); ``wall_seconds`` is the time
    since the previous epoch of this attempt ended (for its first epoch, since that began), so it
    also holds what runs between epochs: checkpoints, the next ``fit`` call, opening readers.
    """

    def __init__(self, history: list[dict[str, float]]) -> None:
        super().__init__()
        self.history = history
        self._start = 0.0
        self._last_end: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        since = self._start if self._last_end is None else self._last_end
        self._last_end = now
        entry = {
            "epoch": epoch,
            **_clean(logs),
            "seconds": now - self._start,
            "wall_seconds": now - since,
        }
        self.history.append(entry)


class CheckpointCallback(tf.keras.callbacks.Callback):
    """Rank 0: write an atomic checkpoint (model and optimizer) after every epoch.

    Each write is fenced (:func:`sparkdl.train.checkpoint.fenced`): once the driver has given
    this attempt up, the write raises FencedError and training on this rank stops.
    """

    def __init__(
        self,
        *,
        fence: Fence,
        history: list[dict[str, float]],
        optimizer: Any,
        staging: str | None = None,
        extra: dict[str, Any] | None = None,
        files: Callable[[], dict[str, bytes]] | None = None,
    ) -> None:
        super().__init__()
        self.fence = fence
        self.history = history
        self.optimizer = optimizer
        self.staging = staging
        self.extra = dict(extra or {})  # more objects to checkpoint (a mode's shared state)
        self.files = files  # more files for the checkpoint's folder (every rank's state)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, **self.extra)
        path = write_checkpoint(
            ckpt,
            root=self.fence.root,
            epoch=epoch,
            history=list(self.history),
            fence=self.fence,
            staging=self.staging,
            extra_files=self.files() if self.files else None,
        )
        logger.info("checkpoint for epoch %d written to %s", epoch, path)


class EventSync(tf.keras.callbacks.Callback):
    """Rank 0: copy TensorBoard's event files from this node to the store after every epoch
    and at the end of training (fenced like the checkpoints). Keras's TensorBoard callback,
    which runs before this one, writes them locally: TensorBoard cannot write to every store."""

    def __init__(self, local: str, *, target: str, fence: Fence) -> None:
        super().__init__()
        self.local, self.target, self.fence = local, target, fence

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        sync_folder(self.local, target=self.target, fence=self.fence)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        sync_folder(self.local, target=self.target, fence=self.fence)


class ProgressReporter(tf.keras.callbacks.Callback):
    """Rank 0: send each epoch's metrics to the driver's rendezvous server as they come."""

    def __init__(
        self, *, addr: str, port: int, attempt: int, epochs: int, history: list[dict[str, float]]
    ) -> None:
        super().__init__()
        self.addr, self.port = addr, port
        self.attempt = attempt
        self.epochs = epochs
        self.history = history

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = {"attempt": self.attempt, "epochs": self.epochs, **self.history[-1]}
        try:
            send(self.addr, self.port, REPORT_SCOPE, f"epoch-{epoch:05d}", value)
        except OSError as exc:  # progress is best effort; training goes on
            logger.warning("could not report epoch %d to the driver: %s", epoch, exc)


def start_heartbeat(model: Any, *, addr: str, port: int, rank: int, interval_s: float) -> None:
    """Every rank: a daemon thread that sends the driver this rank's step count.

    The value is the model's train and test step counters, so it changes only while the rank
    makes progress: a rank stuck in a collective or a hung input pipeline keeps sending the
    same value, and the driver's watcher sees it as silent.
    """

    def progress() -> int:
        counters = (getattr(model, "_train_counter", None), getattr(model, "_test_counter", None))
        return sum(int(c.numpy()) for c in counters if c is not None)

    def loop() -> None:
        beat = 0
        while True:
            beat += 1
            try:
                # The first beats say "alive" while the step counters have not moved yet.
                value = {"steps": progress()} if beat > 3 else {"starting": beat}
                send(addr, port, HEARTBEAT_SCOPE, f"rank-{rank}", value)
            except OSError as exc:
                logger.warning("heartbeat to the driver failed: %s", exc)
            time.sleep(interval_s)

    threading.Thread(target=loop, name="sparkdl-heartbeat", daemon=True).start()


class FaultInjector(tf.keras.callbacks.Callback):
    """Fire the configured fault once at (rank, epoch, batch, attempt); inert otherwise."""

    def __init__(self, fault: FaultConfig, *, rank: int, attempt: int) -> None:
        super().__init__()
        self.active = fault.kind != "none" and fault.rank == rank and fault.attempt == attempt
        self.fault = fault
        self._epoch = -1

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # With steps_per_execution > 1 only every n-th batch is seen: fire at the first one
        # at or after the configured batch.
        if not self.active or self._epoch != self.fault.epoch or batch < self.fault.batch:
            return
        self.active = False
        where = f"rank {self.fault.rank}, epoch {self._epoch}, batch {batch}, attempt {self.fault.attempt}"
        print(f"sparkdl fault injection: {self.fault.kind} at {where}", flush=True)
        if self.fault.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault.kind == "raise":
            raise RuntimeError(f"injected fault at {where} (train.fault.kind=raise)")
        while True:  # stall: never return, so only timeouts can end this rank
            time.sleep(3600)
