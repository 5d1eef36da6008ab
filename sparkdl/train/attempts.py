"""The attempts of one training run: fences, resumes, interrupts, and which failures are retried.

A failed barrier stage is not retried by Spark; :func:`run_attempts` retries it up to
``train.max_attempts`` times, each attempt resuming from the last complete checkpoint. Before an
attempt starts, the driver moves the checkpoint fence to it
(:func:`sparkdl.train.checkpoint.claim_fence`) and, after an attempt failed, waits until the
stage's tasks, and so their rank processes, are gone.

Not retried:

- an interrupt (SIGINT, SIGTERM): the jobs are cancelled and the run ends with
  :class:`~sparkdl.errors.RunInterruptedError`. PySpark's own SIGINT handler cannot do this:
  it calls Py4J from inside the signal handler, on the connection the main thread is blocked on
  in ``collect()``, which fails with "reentrant call"; no job is cancelled, the stage's ranks
  train on, and the failed call looked like a failed attempt.
- bad input a rank raised (a model function that cannot be built): the same on every attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sparkdl.interrupts import InterruptGuard
from sparkdl.launch.barrier import BarrierLauncher, LaunchError
from sparkdl.launch.inputerror import input_error_in
from sparkdl.store import Store
from sparkdl.train.checkpoint import claim_fence, latest_checkpoint
from sparkdl.train.result import RankResult
from sparkdl.train.worker import WorkerSpec, train_rank

if TYPE_CHECKING:
    from pyspark import SparkContext

logger = logging.getLogger(__name__)

# How long a failed attempt's tasks may take to end: Spark kills a cancelled task's Python
# worker (and with it the rank, by its death signal) after spark.python.task.killTimeout (2 s)
# and a monitor poll of 2 s.
TASKS_END_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Attempts:
    """What the attempts of a run produced: rank 0's result of the one that succeeded."""

    result: RankResult
    attempts: int
    resumed_from_epoch: int | None


def wait_for_tasks_to_end(sc: SparkContext, *, timeout_s: float = TASKS_END_TIMEOUT_S) -> bool:
    """Wait until no task runs on any executor (a failed stage's killed tasks end after its
    job did); return False when some still ran after ``timeout_s``."""
    tracker = sc._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout_s
    while True:
        running = sum(int(e.numRunningTasks()) for e in tracker.getExecutorInfos())
        if running == 0:
            return True
        if time.monotonic() > deadline:
            logger.warning(
                "%d tasks still run %.0f s after the attempt failed; the next attempt may start "
                "beside them (the checkpoint fence keeps them from publishing)",
                running,
                timeout_s,
            )
            return False
        time.sleep(0.25)


def run_attempts(
    sc: SparkContext,
    launcher: BarrierLauncher,
    base: WorkerSpec,
    *,
    max_attempts: int,
    on_report: Callable[[str, Any], None] | None = None,
    heartbeat_timeout_s: float | None = None,
    checkpoints: Store | None = None,
) -> Attempts:
    """Run :func:`~sparkdl.train.worker.train_rank` on the ranks until one attempt succeeds.

    Raises
    ------
    RunInterruptedError
        On SIGINT or SIGTERM (no attempt is spent on it).
    BadInputError
        When a rank failed on bad input (the rank's message; the first attempt is the last).
    LaunchError
        When every one of ``max_attempts`` attempts failed.

    Examples
    --------
    >>> run_attempts(sc, launcher, spec, max_attempts=3).attempts  # doctest: +SKIP
    1
    """
    # the driver reads and fences the checkpoints through its own store (Spark's Hadoop FS)
    where = checkpoints or base.checkpoint_dir
    with InterruptGuard(sc, what="training") as guard:
        for attempt in range(max_attempts):
            guard.check()
            # From here on no older attempt can publish a checkpoint: resume from what is there.
            fence = claim_fence(where, attempt=attempt)
            spec = replace(base, attempt=attempt, fence=fence)
            ckpt = latest_checkpoint(where)
            if ckpt is not None:
                spec = replace(spec, resume=ckpt, resume_epoch=ckpt.epoch, history=ckpt.history)
                logger.info(
                    "attempt %d resumes after epoch %d from %s", attempt + 1, ckpt.epoch, ckpt.path
                )
            guard.check()  # a signal during the set-up: launch nothing
            try:
                result = launcher.run(
                    train_rank, spec, on_report=on_report, heartbeat_timeout_s=heartbeat_timeout_s
                )
            except LaunchError as exc:
                wait_for_tasks_to_end(sc)
                guard.check(exc)
                _raise_input_error(exc)
                if attempt + 1 >= max_attempts:
                    raise LaunchError(
                        f"training failed in all {max_attempts} attempts (train.max_attempts); "
                        f"last error: {exc}"
                    ) from exc
                logger.warning(
                    "attempt %d of %d failed; retrying from the last checkpoint: %s",
                    attempt + 1,
                    max_attempts,
                    str(exc)[-3000:],
                )
                continue
            except KeyboardInterrupt as exc:  # a second signal
                guard.check(exc)
                raise
            guard.check()
            # Rank 0 restored this checkpoint or failed the attempt (train_rank): it did resume.
            resumed = ckpt.epoch if ckpt is not None else None
            return Attempts(result=result, attempts=attempt + 1, resumed_from_epoch=resumed)
    raise LaunchError("training ran no attempt (train.max_attempts must be at least 1)")


def _raise_input_error(exc: LaunchError) -> None:
    """Re-raise the bad-input error a rank failed on, if it did."""
    cause: BaseException | None = exc
    while cause is not None:
        error = input_error_in(str(cause))
        if error is not None:
            raise error from exc
        cause = cause.__cause__
