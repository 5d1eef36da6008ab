"""Exclusive locks on output roots: one writer at a time per dataset root, ``train.output``,
baseline output and pipeline run folder.

A lock is a small JSON file, ``<root>/_LOCK``, created atomically (``O_CREAT | O_EXCL`` on a
local disk, Hadoop's ``FileSystem.create(path, overwrite=false)`` for ``hdfs://`` and other
Hadoop URIs; ``file:`` URIs are locked on the local disk, where Hadoop's create is not atomic).
It names its holder: user, host, pid, command, start time, and a refresh time that a background
thread of the holder renews every quarter of the stale time (at most every 60 s) while it is
held. A second writer is refused with :class:`~sparkdl.errors.OutputLockedError` (exit 2)
naming the holder, before it changes anything.

A lock is stale, and taken over with a WARNING, when

- its holder ran on this host and that process is gone (or its pid now belongs to a newer
  process), or
- its holder ran on another host and has not refreshed it for ``SPARKDL_LOCK_STALE_S`` seconds
  (default 600: a live holder refreshes it every 60 s, so clock skew or a slow file system
  up to minutes does not break a live lock).

A process may hold the same lock more than once (the pipeline holds a baseline's output while
the baseline itself takes it); the file goes when the outermost holder releases it.

Examples
--------
>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> with output_lock(root, what="train.output") as lock:
...     lock.held
True
>>> lock.held
False
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from sparkdl.errors import BadInputError, OutputLockedError
from sparkdl.lockfile import (
    LOCK_NAME,
    STALE_ENV,
    HadoopStore,
    LocalStore,
    LockHolder,
    LockStore,
    current_holder,
    stale_reason,
    stale_seconds,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_GUARD_STALE_S = 30.0  # a takeover guard older than this was left by a crashed takeover
_RETRIES = 40  # attempts of the acquire loop (a lock being written or released meanwhile)
_RETRY_S = 0.1

# Locks this process holds, by lock path: (pid, token, depth). Keyed by pid too, so a forked
# child does not believe it holds its parent's locks.
_HELD: dict[str, tuple[int, str, int]] = {}
_HELD_LOCK = threading.Lock()

__all__ = [
    "LOCK_NAME",
    "STALE_ENV",
    "HadoopStore",
    "LocalStore",
    "LockHolder",
    "OutputLock",
    "current_holder",
    "output_lock",
    "stale_reason",
    "stale_seconds",
]


class OutputLock:
    """An exclusive lock on one output root; a context manager.

    Parameters
    ----------
    root : str or Path
        The output folder (a local path, or a Hadoop URI with ``store=HadoopStore(spark)``).
    what : str
        The setting that names this output (``train.output``), for messages.
    store : LockStore, optional
        Where the lock file lives (default: the local disk).
    stale_s : float, optional
        The stale time (default: :func:`stale_seconds`).

    Raises
    ------
    OutputLockedError
        On enter, when a live writer holds the lock.

    Examples
    --------
    >>> import tempfile
    >>> with OutputLock(tempfile.mkdtemp(), what="sgd.output") as lock:
    ...     lock.held
    True
    """

    def __init__(
        self,
        root: str | Path,
        *,
        what: str,
        store: LockStore | None = None,
        stale_s: float | None = None,
    ) -> None:
        self._store = store or LocalStore()
        if isinstance(self._store, LocalStore):
            root = Path(root).resolve()  # one lock path per folder, however it is written
        self.root = str(root).rstrip("/")
        self.path = f"{self.root}/{LOCK_NAME}"
        self.what = what
        self._stale_s = stale_seconds() if stale_s is None else stale_s
        self._holder: LockHolder | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self.held = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, re-enter it when this process holds it, or refuse."""
        with _HELD_LOCK:
            held = _HELD.get(self.path)
            if held is not None and held[0] == os.getpid():
                _HELD[self.path] = (held[0], held[1], held[2] + 1)
                self.held = True
                logger.debug("re-entered the lock %s (depth %d)", self.path, held[2] + 1)
                return
        holder = current_holder(what=self.what)
        for _ in range(_RETRIES):
            if self._create(holder):
                break
            seen = self._read_holder()
            if seen is None:  # released meanwhile, being written, or damaged
                self._drop_if_unreadable()
            else:
                why = stale_reason(seen[1], now=time.time(), stale_s=self._stale_s)
                if why is None:
                    raise self._refusal(seen[1])
                if self._take_over(seen, why=why, mine=holder):
                    break
            time.sleep(_RETRY_S)
        else:
            seen = self._read_holder()
            raise self._refusal(seen[1] if seen else None)
        self._holder = holder
        with _HELD_LOCK:
            _HELD[self.path] = (holder.pid, holder.token, 1)
        self.held = True
        logger.info("locked %s %s (%s)", self.what, self.root, self.path)
        self._stop.clear()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="sparkdl-lock-refresh", daemon=True
        )
        self._refresher.start()

    def _create(self, holder: LockHolder) -> bool:
        """Create the lock file; False when it exists. An output that cannot be written at all
        (permissions, a full disk, a file in the way) is bad input, refused here first."""
        try:
            return self._store.create_new(self.path, holder.to_json())
        except OSError as exc:
            raise BadInputError(
                f"{self.what}={self.root} cannot be written from the driver: "
                f"{type(exc).__name__}: {exc}. Choose a writable location for {self.what}"
            ) from exc

    def release(self) -> None:
        """Release the lock (the file goes with the outermost holder)."""
        if not self.held:
            return
        self.held = False
        with _HELD_LOCK:
            pid, token, depth = _HELD[self.path]
            if depth > 1:
                _HELD[self.path] = (pid, token, depth - 1)
                return
            del _HELD[self.path]
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=10)
        if self._mine():
            self._store.delete(self.path)
            logger.info("unlocked %s %s", self.what, self.root)
        else:
            logger.warning(
                "the lock %s was taken over by another run while this one held it; left as is",
                self.path,
            )

    def _mine(self) -> bool:
        text = self._store.read(self.path)
        try:
            return (
                text is not None
                and self._holder is not None
                and LockHolder.from_json(text).token == self._holder.token
            )
        except ValueError:
            return False

    def _refresh_loop(self) -> None:
        interval = min(60.0, self._stale_s / 4)
        while not self._stop.wait(interval):
            holder = self._holder
            if holder is None or not self._mine():
                logger.error("lost the lock %s to another run; stopped refreshing it", self.path)
                return
            self._holder = LockHolder(**{**asdict(holder), "refreshed_unix": time.time()})
            try:
                self._store.replace(self.path, self._holder.to_json())
            except Exception as exc:  # a transient file-system error must not end the run
                logger.warning("could not refresh the lock %s: %s", self.path, exc)

    def _read_holder(self) -> tuple[str, LockHolder] | None:
        """The lock file's text and holder; None when it is gone or still being written."""
        text = self._store.read(self.path)
        if text is None:
            return None
        try:
            return text, LockHolder.from_json(text)
        except ValueError:
            return None

    def _drop_if_unreadable(self) -> None:
        """Delete a lock file that cannot be parsed and is older than the stale time."""
        age = self._store.age_s(self.path)
        if age is not None and age > self._stale_s and self._read_holder() is None:
            logger.warning("deleting the unreadable stale lock %s (%.0f s old)", self.path, age)
            self._store.delete(self.path)

    def _take_over(self, seen: tuple[str, LockHolder], *, why: str, mine: LockHolder) -> bool:
        """Replace the stale lock ``seen`` by ours; False when another run got there first."""
        text, holder = seen
        guard = f"{self.path}.takeover"
        if not self._store.create_new(guard, mine.to_json()):
            age = self._store.age_s(guard)
            if age is not None and age > _GUARD_STALE_S:
                self._store.delete(guard)
            return False
        try:
            if self._store.read(self.path) != text:
                return False
            logger.warning(
                "taking over the stale lock %s (%s): it was held by %s",
                self.path,
                why,
                holder.describe(now=time.time()),
            )
            self._store.delete(self.path)
            return self._store.create_new(self.path, mine.to_json())
        finally:
            self._store.delete(guard)

    def _refusal(self, holder: LockHolder | None) -> OutputLockedError:
        fix = (
            f"Wait for that run to finish, or write to another {self.what}. A lock is taken "
            f"over by itself once its process is gone (same host) or it has not been refreshed "
            f"for {self._stale_s:.0f} s ({STALE_ENV}); to break it now, make sure that run is "
            f"gone and delete {self.path}."
        )
        if holder is None:
            return OutputLockedError(
                f"{self.what} {self.root} is locked by another run, and its lock file "
                f"{self.path} cannot be read (being written, or damaged). {fix}"
            )
        return OutputLockedError(
            f"{self.what} {self.root} is locked by another run: "
            f"{holder.describe(now=time.time())} (lock {self.path}). {fix}"
        )


def output_lock(root: str | Path, *, what: str, spark: SparkSession | None = None) -> OutputLock:
    """The lock on output root ``root``, on the file system that owns it.

    Parameters
    ----------
    root : str or Path
        A local path; with ``spark``, any path Hadoop accepts (``file:``, ``hdfs://``, ...).
    what : str
        The setting that names this output (``prepare.output``), for messages.
    spark : SparkSession, optional
        Needed for Hadoop URIs; ``file:`` URIs are locked on the local disk.

    Returns
    -------
    OutputLock
        Use it as a context manager.

    Examples
    --------
    >>> import tempfile
    >>> output_lock(tempfile.mkdtemp(), what="kmeans.output").path.endswith("/_LOCK")
    True
    """
    text = str(root)
    url = urlparse(text)
    if url.scheme in ("", "file"):
        local = url.path if url.scheme == "file" else text
        return OutputLock(Path(local).resolve(), what=what)
    if spark is None:
        raise BadInputError(
            f"{what} {text} is not a local path; locking it needs the Spark session "
            "(output_lock(..., spark=spark))"
        )
    return OutputLock(text, what=what, store=HadoopStore(spark))
