"""The store as the driver sees it: Spark's Hadoop file system over an output location.

The driver's Hadoop configuration holds the cluster's credentials and default file system, so
the driver writes and reads its part of every output (``metrics.json``, ``run.json``, the
checkpoint fence, the baselines' models) on a cluster file system through it; the ranks use
:mod:`sparkdl.store.arrow`. A POSIX path or ``file:`` URI is the driver's own mount: it is
written directly (Hadoop's local file system would add a ``.crc`` file beside each file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkdl.data.fs import HadoopFS
from sparkdl.errors import InfraError
from sparkdl.store.arrow import ArrowStore
from sparkdl.store.uri import Location, parse_location

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class HadoopStore:
    """File operations under one output location, through the driver's Hadoop FileSystem.

    The same methods as :class:`sparkdl.store.arrow.ArrowStore`.

    Examples
    --------
    >>> store = HadoopStore(spark, "file:///tmp/runs/a")  # doctest: +SKIP
    >>> store.write_bytes("metrics.json", b"{}")  # doctest: +SKIP
    """

    def __init__(
        self, spark: SparkSession, root: str | Location, *, through_hadoop: bool = False
    ) -> None:
        self.location = root if isinstance(root, Location) else parse_location(root)
        self._hfs = HadoopFS(spark)
        # through_hadoop: a file: location through Hadoop too (a custom fs.file.impl)
        mounted = self.location.scheme in ("", "file") and not through_hadoop
        self._mounted = ArrowStore(self.location) if mounted else None

    @property
    def uri(self) -> str:
        """The root's URI."""
        return self.location.uri

    def _uri(self, rel: str = "") -> str:
        loc = self.location.child(rel) if rel else self.location
        return f"file://{loc.path}" if loc.scheme == "" else loc.uri

    def local_path(self, rel: str = "") -> Path | None:
        """``rel`` as a POSIX path when the store is a mounted file system, else None."""
        posix = (self.location.child(rel) if rel else self.location).posix
        return Path(posix) if posix is not None else None

    def _guard(self, what: str, rel: str, call: Any) -> Any:
        try:
            return call()
        except FileNotFoundError:
            raise
        except Exception as exc:  # Py4J carries the Hadoop IOException
            if "FileNotFoundException" in str(exc):
                raise FileNotFoundError(self._uri(rel)) from exc
            raise InfraError(
                f"cannot {what} {self._uri(rel)}: {str(exc).splitlines()[0][:300]}. Check that "
                "the store is writable by the driver's user and has space"
            ) from exc

    def exists(self, rel: str = "") -> bool:
        """Whether ``rel`` exists (file or folder)."""
        if self._mounted is not None:
            return self._mounted.exists(rel)
        return bool(self._guard("read", rel, lambda: self._hfs.exists(self._uri(rel))))

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of file ``rel`` (FileNotFoundError when it does not exist)."""
        if self._mounted is not None:
            return self._mounted.read_bytes(rel)
        uri = self._uri(rel)
        return self._guard("read", rel, lambda: self._hfs.read_bytes(uri))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write file ``rel`` atomically (temporary sibling renamed over it)."""
        if self._mounted is not None:
            return self._mounted.write_bytes(rel, data)
        uri = self._uri(rel)
        self._guard("write", rel, lambda: self._hfs.write_bytes(uri, data))

    def list_names(self, rel: str = "") -> list[str]:
        """The names directly under folder ``rel`` (empty when it does not exist), sorted."""
        if self._mounted is not None:
            return self._mounted.list_names(rel)
        uri = self._uri(rel)
        return self._guard("list", rel, lambda: self._hfs.list_names(uri))

    def delete(self, rel: str) -> None:
        """Delete file or folder ``rel`` (recursively); nothing when it does not exist."""
        if self._mounted is not None:
            return self._mounted.delete(rel)
        self._guard("delete", rel, lambda: self._hfs.delete(self._uri(rel)))
