"""Logging set-up shared by the CLI and the jobs."""

from __future__ import annotations

import logging
import os

from sparkdl.errors import BadInputError

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines drown the job's own.
_NOISY = ("py4j", "petastorm", "urllib3", "matplotlib")


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
