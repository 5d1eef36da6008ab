"""Interrupts that stop a Spark command cleanly: its jobs cancelled, no attempt spent.

PySpark's own SIGINT handler calls Py4J from inside the signal handler, on the connection the
main thread is blocked on (in ``collect()``, say); that call fails with "reentrant call", no job
is cancelled, and the failed call surfaces as an ordinary Py4J error. :class:`InterruptGuard`
replaces it (and SIGTERM's) while a command's body runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from sparkdl.errors import RunInterruptedError

if TYPE_CHECKING:
    from pyspark import SparkContext

logger = logging.getLogger(__name__)


class InterruptGuard:
    """While the body runs, SIGINT and SIGTERM cancel this context's Spark jobs and mark the
    run interrupted; a second signal raises KeyboardInterrupt at once.

    The jobs are cancelled from a helper thread (with its own Py4J connection), again every
    second until the guard exits, so a job submitted just after the signal is cancelled too.
    Outside the main thread the guard installs nothing.

    Examples
    --------
    >>> with InterruptGuard(sc, what="training") as guard:  # doctest: +SKIP
    ...     launcher.run(fn)
    ...     guard.check()
    """

    def __init__(self, sc: SparkContext, *, what: str) -> None:
        self._sc = sc
        self.what = what
        self.signum: int | None = None
        self._stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop waiting for the cancellation
        self.signum = signum
        threading.Thread(target=self._cancel, name="sparkdl-interrupt", daemon=True).start()

    def _cancel(self) -> None:
        logger.warning(
            "%s: %s received, cancelling the Spark jobs (again to stop at once)",
            self.what,
            signal.Signals(self.signum or signal.SIGINT).name,
        )
        while not self._stop.is_set():
            try:
                self._sc.cancelAllJobs()
            except Exception:  # the JVM may be going away with us
                logger.debug("cancelAllJobs failed", exc_info=True)
            self._stop.wait(1.0)

    def check(self, cause: BaseException | None = None) -> None:
        """Raise RunInterruptedError when a signal came."""
        if self.signum is not None:
            raise RunInterruptedError(
                f"{self.what} was interrupted by {signal.Signals(self.signum).name}: its Spark "
                "jobs were cancelled and no attempt was spent; run the same command again "
                "(train and the pipeline resume from where they stopped)"
            ) from cause
