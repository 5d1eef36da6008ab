"""The store as the ranks see it: ``pyarrow.fs`` (or fsspec) over an output location.

Ranks write into their node's staging folder and publish to the store with :class:`ArrowStore`
(:mod:`sparkdl.store.publish`); they never need the driver's JVM. What each scheme needs on the
executors:

- POSIX paths, ``file:`` and ``dbfs:`` (via ``/dbfs``): nothing.
- ``hdfs://``: ``libhdfs.so`` (``ARROW_LIBHDFS_DIR``), a JVM (``JAVA_HOME``) and the Hadoop jars on
  ``CLASSPATH`` (``export CLASSPATH=$(hadoop classpath --glob)``), as for any pyarrow HDFS client.
- ``s3a://`` / ``s3://``: AWS credentials the AWS SDK finds (environment, instance profile) and
  ``AWS_REGION``; ``gs://``: Google application credentials.
- ``abfss://``: ``pip install adlfs`` and ``AZURE_STORAGE_ACCOUNT_KEY`` (or another credential
  adlfs reads).
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError, InfraError
from sparkdl.store.uri import Location, parse_location

logger = logging.getLogger(__name__)

NEEDS = {
    "hdfs": "libhdfs (ARROW_LIBHDFS_DIR), JAVA_HOME and the Hadoop jars on CLASSPATH "
    "(export CLASSPATH=$(hadoop classpath --glob)) on every executor",
    "s3a": "AWS credentials (environment or instance profile) and AWS_REGION on every executor",
    "s3": "AWS credentials (environment or instance profile) and AWS_REGION on every executor",
    "gs": "Google application credentials on every executor",
    "abfss": "the adlfs package (pip install adlfs) and an Azure credential on every executor",
    "abfs": "the adlfs package (pip install adlfs) and an Azure credential on every executor",
}


# scheme -> a function of the location giving (pyarrow file system, path in it)
_REGISTERED: dict[str, Callable[[Location], tuple[Any, str]]] = {}


def register_filesystem(scheme: str, factory: Callable[[Location], tuple[Any, str]] | None) -> None:
    """Use ``factory(location) -> (pyarrow file system, path)`` for ``scheme`` in this process
    (for example an fsspec file system wrapped in ``pyarrow.fs.PyFileSystem``); None restores
    the built-in one.

    Examples
    --------
    >>> import fsspec, pyarrow.fs as pafs
    >>> memory = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory")))
    >>> register_filesystem("s3", lambda loc: (memory, "/" + loc.path))
    >>> ArrowStore("s3://bucket/a").write_bytes("x", b"1")
    >>> ArrowStore("s3://bucket/a").read_bytes("x")
    b'1'
    >>> register_filesystem("s3", None)
    """
    if factory is None:
        _REGISTERED.pop(scheme, None)
    else:
        _REGISTERED[scheme] = factory


def _backend(loc: Location) -> tuple[Any, str]:
    """The pyarrow file system for ``loc`` and the path within it."""
    import pyarrow.fs as pafs

    if loc.scheme in _REGISTERED:
        return _REGISTERED[loc.scheme](loc)
    if loc.posix is not None:
        return pafs.LocalFileSystem(), loc.posix
    try:
        if loc.scheme == "hdfs":
            host, _, rest = loc.path.partition("/")
            name, _, port = host.partition(":")
            return pafs.HadoopFileSystem(name, int(port or 8020)), "/" + rest
        if loc.scheme in ("s3a", "s3"):
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            return pafs.S3FileSystem(region=region) if region else pafs.S3FileSystem(), loc.path
        if loc.scheme == "gs":
            return pafs.GcsFileSystem(), loc.path
        if loc.scheme in ("abfss", "abfs"):
            import adlfs  # type: ignore[import-not-found]

            container, _, tail = loc.path.partition("/")
            name, _, account = container.partition("@")
            fs = adlfs.AzureBlobFileSystem(account_name=account.split(".", 1)[0])
            return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), f"{name}/{tail}"
    except (ImportError, OSError) as exc:
        raise BadInputError(
            f"cannot open {loc.uri} on this node ({type(exc).__name__}: {str(exc)[:200]}); "
            f"a {loc.scheme}: output needs {NEEDS[loc.scheme]}"
        ) from exc
    raise BadInputError(f"no file system for {loc.uri}")  # parse_location refuses these first


class ArrowStore:
    """File operations under one output location, through ``pyarrow.fs``.

    Parameters
    ----------
    root : str or Location
        The output location (a URI or an absolute POSIX path).

    Examples
    --------
    >>> import tempfile
    >>> store = ArrowStore(tempfile.mkdtemp())
    >>> store.write_bytes("a/b.json", b"{}")
    >>> store.read_bytes("a/b.json"), store.exists("a"), store.list_names("a")
    (b'{}', True, ['b.json'])
    """

    def __init__(self, root: str | Location) -> None:
        self.location = root if isinstance(root, Location) else parse_location(root)

    @functools.cached_property
    def _fs(self) -> tuple[Any, str]:
        return _backend(self.location)

    @property
    def uri(self) -> str:
        """The root's URI."""
        return self.location.uri

    def _path(self, rel: str = "") -> str:
        base = self._fs[1].rstrip("/")
        return f"{base}/{rel.strip('/')}" if rel else base

    def local_path(self, rel: str = "") -> Path | None:
        """``rel`` as a POSIX path when the store is a mounted file system, else None."""
        return Path(self._path(rel)) if self.location.posix is not None else None

    def _guard(self, what: str, rel: str, call: Any) -> Any:
        try:
            return call()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise InfraError(
                f"cannot {what} {self.location.child(rel).uri}: {type(exc).__name__}: {exc}. "
                "Check that the store is writable by the executors' user and has space"
            ) from exc

    @property
    def renames_atomically(self) -> bool:
        """Whether a folder can be renamed into place in one step (mounted stores, HDFS)."""
        return self.location.scheme in ("", "file", "dbfs", "hdfs")

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (a folder or a file; ``dst`` must not exist)."""
        fs, _ = self._fs
        self._guard("rename", src, lambda: fs.move(self._path(src), self._path(dst)))

    def exists(self, rel: str = "") -> bool:
        """Whether ``rel`` exists (file or folder)."""
        import pyarrow.fs as pafs

        fs, _ = self._fs
        info = self._guard("read", rel, lambda: fs.get_file_info(self._path(rel)))
        return bool(info.type != pafs.FileType.NotFound)

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of file ``rel`` (FileNotFoundError when it does not exist)."""
        fs, _ = self._fs

        def read() -> bytes:
            with fs.open_input_stream(self._path(rel)) as fh:
                return bytes(fh.read())

        return self._guard("read", rel, read)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write file ``rel``; readers never see a part of it.

        A mounted store gets a temporary sibling renamed over the target (readers see the old
        content or the new); an object store writes the object in one request. HDFS renames do
        not replace, so there the old file is deleted just before the rename: a reader in that
        moment finds no file (the driver reads the checkpoint pointer only between attempts,
        once the previous attempt's tasks have ended).
        """
        fs, _ = self._fs
        target = self._path(rel)
        parent = target.rsplit("/", 1)[0]

        def write() -> None:
            fs.create_dir(parent, recursive=True)
            if not self.renames_atomically:
                with fs.open_output_stream(target) as out:
                    out.write(data)
                return
            tmp = f"{parent}/.{target.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex[:8]}"
            with fs.open_output_stream(tmp) as out:
                out.write(data)
            if self.location.scheme == "hdfs" and fs.get_file_info(target).size is not None:
                fs.delete_file(target)  # HDFS renames do not replace
            fs.move(tmp, target)

        self._guard("write", rel, write)

    def list_names(self, rel: str = "") -> list[str]:
        """The names directly under folder ``rel`` (empty when it does not exist), sorted."""
        import pyarrow.fs as pafs

        fs, _ = self._fs
        sel = pafs.FileSelector(self._path(rel), allow_not_found=True, recursive=False)
        infos = self._guard("list", rel, lambda: fs.get_file_info(sel))
        return sorted(i.base_name for i in infos)

    def delete(self, rel: str) -> None:
        """Delete file or folder ``rel`` (recursively); nothing when it does not exist."""
        import pyarrow.fs as pafs

        fs, _ = self._fs
        path = self._path(rel)

        def delete() -> None:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(path)
            elif info.type == pafs.FileType.File:
                fs.delete_file(path)

        self._guard("delete", rel, delete)

    def put_file(self, local: str | Path, rel: str) -> None:
        """Copy local file ``local`` to ``rel`` (not atomic: publish with a pointer after)."""
        fs, _ = self._fs
        target = self._path(rel)

        def put() -> None:
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            _copy(str(local), target, fs)

        self._guard("write", rel, put)

    def get_file(self, rel: str, local: str | Path) -> None:
        """Copy file ``rel`` of the store to local path ``local``."""
        fs, _ = self._fs
        Path(local).parent.mkdir(parents=True, exist_ok=True)

        def get() -> None:
            with fs.open_input_stream(self._path(rel)) as src, open(local, "wb") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)

        self._guard("read", rel, get)


def _copy(src: str, dst: str, fs: Any) -> None:
    """Stream local file ``src`` to ``dst`` on ``fs`` in 4 MiB pieces."""
    with open(src, "rb") as fh, fs.open_output_stream(dst) as out:
        while chunk := fh.read(1 << 22):
            out.write(chunk)
