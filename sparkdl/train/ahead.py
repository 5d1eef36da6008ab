"""Open a context manager on a background thread before it is needed: the next epoch's reader.

A rank used to open each epoch's Parquet reader (petastorm's metadata, its thread pool, the first
row group read and shuffled) between two epochs, while the training step waited and, with more
than one rank, the other ranks waited for it at the next all-reduce. :class:`Ahead` enters the
next epoch's context while the current epoch trains and hands it over when that epoch starts.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """Enter ``make()`` on a daemon thread now; :meth:`take` its value later, :meth:`close` it.

    Parameters
    ----------
    make : callable
        Returns the context manager to enter (called on the background thread).
    name : str
        The thread's name, for stack dumps.

    Examples
    --------
    >>> import contextlib
    >>> @contextlib.contextmanager
    ... def opened(n):
    ...     yield n * 2
    >>> ahead = Ahead(lambda: opened(21), name="demo")
    >>> ahead.take()
    42
    >>> ahead.close()
    """

    def __init__(self, make: Callable[[], AbstractContextManager[T]], *, name: str) -> None:
        self._stack = contextlib.ExitStack()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._enter, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _enter(self, make: Callable[[], AbstractContextManager[T]]) -> None:
        try:
            self._value = self._stack.enter_context(make())
        except BaseException as exc:  # handed to the caller by take()
            self._error = exc

    def take(self) -> T:
        """Wait until the context is entered and return its value (or raise what entering did)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def close(self) -> None:
        """Wait for the entry to finish, then exit the context (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._thread.join()
        self._stack.close()

    def __enter__(self) -> Ahead[T]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
