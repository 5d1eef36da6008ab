"""Logging set-up shared by the CLI and the jobs: the console, and one log file per run."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sparkdl.errors import BadInputError

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines drown the job's own.
_NOISY = ("py4j", "petastorm", "urllib3", "matplotlib")
LOG_DIR_ENV = "SPARKDL_LOG_DIR"
_KEEP_LOGS = 100


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr with timestamps, and quiet chatty libraries.

    Parameters
    ----------
    level : str
        ``DEBUG``, ``INFO``, ``WARNING`` (or ``WARN``) or ``ERROR``.

    Examples
    --------
    >>> configure_logging("WARNING")
    """
    name = "WARNING" if level.upper() == "WARN" else level.upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise BadInputError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    logging.basicConfig(level=name, format=_FORMAT, datefmt="%H:%M:%S", force=True)
    for lib in _NOISY:
        logging.getLogger(lib).setLevel(max(logging.WARNING, logging.getLogger().level))
    # TensorFlow's C++ start-up banner says nothing a user can act on.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log_dir() -> Path:
    """The folder of the runs' log files: ``$SPARKDL_LOG_DIR``, else ``<tmp>/sparkdl-logs-<uid>``.

    Examples
    --------
    >>> log_dir().name.startswith("sparkdl-logs") or "SPARKDL_LOG_DIR" in os.environ
    True
    """
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"sparkdl-logs-{os.getuid()}"


@contextlib.contextmanager
def run_log(command: str) -> Iterator[Path]:
    """While the body runs, copy the log to a file for this run of ``command``; yield its path.

    The file gets what the console gets plus the tracebacks of failures (``sparkdl.traceback``,
    which does not print to the console). The newest 100 files are kept.

    Examples
    --------
    >>> with run_log("doctest") as path:  # doctest: +SKIP
    ...     path.name
    'doctest-20261201T101500Z-4242.log'
    """
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{command}-{stamp}-{os.getpid()}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    root, trace = logging.getLogger(), logging.getLogger("sparkdl.traceback")
    handler.setLevel(root.level or logging.INFO)
    root.addHandler(handler)
    trace.addHandler(handler)
    _prune(folder)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        trace.removeHandler(handler)
        handler.close()


def _prune(folder: Path) -> None:
    """Keep the newest log files only.

    Other runs prune the same folder at the same time, so a file listed here may be gone by the
    time it is looked at; such a file is skipped, never an error.
    """
    dated = []
    for log in folder.glob("*.log"):
        try:
            dated.append((log.stat().st_mtime, log))
        except FileNotFoundError:
            continue
    dated.sort(reverse=True)
    for _, old in dated[_KEEP_LOGS:]:
        old.unlink(missing_ok=True)
