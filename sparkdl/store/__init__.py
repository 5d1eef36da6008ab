"""One store for everything a job writes: output locations as URIs or shared POSIX paths.

:class:`Store` is the few operations the contracts need; :class:`~sparkdl.store.arrow.ArrowStore`
(``pyarrow.fs``, on the ranks) and :class:`~sparkdl.store.hadoop.HadoopStore` (Spark's Hadoop file
system, on the driver) implement it over the same locations (:mod:`sparkdl.store.uri`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sparkdl.store.uri import Location, parse_location

__all__ = ["Location", "Store", "parse_location"]


class Store(Protocol):
    """File operations under one output location (paths relative to it, ``/``-separated)."""

    location: Location

    @property
    def uri(self) -> str:
        """The root's URI."""
        ...

    def local_path(self, rel: str = "") -> Path | None:
        """``rel`` as a POSIX path when the store is a mounted file system, else None."""
        ...

    def exists(self, rel: str = "") -> bool:
        """Whether ``rel`` exists."""
        ...

    def read_bytes(self, rel: str) -> bytes:
        """File ``rel``'s content; FileNotFoundError when missing."""
        ...

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write file ``rel`` so that readers see all of it or the old content."""
        ...

    def list_names(self, rel: str = "") -> list[str]:
        """Names directly under ``rel``, sorted."""
        ...

    def delete(self, rel: str) -> None:
        """Delete ``rel`` recursively, if it exists."""
        ...
