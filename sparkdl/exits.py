"""How a command's outcome becomes its exit code, its console line and its log file.

:func:`guarded` runs a command's body. An error ends it with the code its class carries
(:mod:`sparkdl.errors`), one line on the console and the traceback in the run's log file:
the class decides, never a builtin exception type, so a ``ValueError`` from inside a library
is an unexpected error (1), not bad input. SIGTERM is turned into SIGINT for the body, so a
scheduler's kill stops a run the way Ctrl-C does (PySpark cancels the running jobs) and both
end with 130.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from sparkdl.config.loader import ConfigError
from sparkdl.errors import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    BadInputError,
    ClusterMisfitError,
    InfraError,
    OutputLockedError,
    RunInterruptedError,
    SparkdlError,
)
from sparkdl.logs import run_log

logger = logging.getLogger(__name__)
# Tracebacks go to the log file only: this logger does not propagate to the console.
_trace = logging.getLogger("sparkdl.traceback")
_trace.propagate = False

_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (OutputLockedError, "output locked"),
    (ClusterMisfitError, "the cluster cannot run this as configured"),
    (ConfigError, "config error"),
    (BadInputError, "bad input"),
    (InfraError, "infrastructure failure"),
    (RunInterruptedError, "interrupted"),
    (SparkdlError, "failed"),
)


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error that ended a command.

    Examples
    --------
    >>> from sparkdl.errors import BadInputError
    >>> exit_code_for(BadInputError("x")), exit_code_for(KeyboardInterrupt())
    (2, 130)
    >>> exit_code_for(ValueError("from a library")), exit_code_for(KeyError("bug"))
    (1, 1)
    """
    if isinstance(exc, SparkdlError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if _is_spark_failure(exc):
        return EXIT_INFRA
    return EXIT_FAILED


def _is_spark_failure(exc: BaseException) -> bool:
    """A failed Spark job (``SparkException``: lost executors, failed stages) or a lost JVM,
    as opposed to a Py4J error from a wrong call, which is a bug (exit 1)."""
    try:
        from py4j.protocol import Py4JJavaError, Py4JNetworkError
    except ImportError:  # pragma: no cover - py4j ships with pyspark
        return False
    if isinstance(exc, Py4JNetworkError):
        return True
    if not isinstance(exc, Py4JJavaError):
        return False
    try:
        name = exc.java_exception.getClass().getName()
    except Exception:  # the JVM went away while the error was read
        return True
    return name == "org.apache.spark.SparkException"


def describe(exc: BaseException) -> str:
    """What kind of failure ``exc`` is, in words for the console line.

    Examples
    --------
    >>> from sparkdl.errors import InfraError
    >>> describe(InfraError("x")), describe(KeyError("k"))
    ('infrastructure failure', 'unexpected error')
    """
    for cls, words in _KINDS:
        if isinstance(exc, cls):
            return words
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if _is_spark_failure(exc):
        return "infrastructure failure (Spark)"
    return "unexpected error"


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """While the body runs, SIGTERM does what SIGINT (Ctrl-C) does."""

    def forward(signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guarded(name: str, body: Callable[[], int]) -> int:
    """Run ``body`` (a command) and return its exit code; errors become codes and one line.

    Parameters
    ----------
    name : str
        The command, as in ``sparkdl <name>``; it prefixes the console line and names the log.
    body : callable
        Runs the command and returns its exit code.

    Returns
    -------
    int
        ``body``'s code, or :func:`exit_code_for` of the error that ended it.

    Examples
    --------
    >>> def bad() -> int:
    ...     raise BadInputError("prepare.source.path 'x' does not exist")
    >>> guarded("prepare", bad)  # doctest: +SKIP
    2
    """
    with run_log(name) as log_file:
        try:
            with _sigterm_as_sigint():
                return body()
        except (Exception, KeyboardInterrupt) as exc:
            return _report(name, exc, log_file)


def _report(name: str, exc: BaseException, log_file: Path) -> int:
    """Log ``exc``'s traceback to the file, print its one console line, return its code."""
    code = exit_code_for(exc)
    _trace.error("sparkdl %s ended with exit %d", name, code, exc_info=exc)
    message = str(exc).strip() or type(exc).__name__
    if code == EXIT_FAILED and not isinstance(exc, SparkdlError):
        message = f"{type(exc).__name__}: {message[:2000]}; traceback in {log_file}"
    elif code == EXIT_INTERRUPTED and isinstance(exc, KeyboardInterrupt):
        message = "stopped by an interrupt (SIGINT/SIGTERM); no attempt was spent"
    print(f"sparkdl {name}: {describe(exc)}: {message[:4000]}", file=sys.stderr, flush=True)
    return code
