"""Small file-system operations through Hadoop's FileSystem API, so every path Spark accepts
(``file://``, ``hdfs://``, ``s3a://``, ``dbfs:/``) works the same. Only metadata and small files
(manifests, pointers, headers) go through here; data always moves through Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileInfo:
    """One file of a listing."""

    path: str
    size: int
    modified_ms: int


class HadoopFS:
    """File operations on the Hadoop file system that owns a path.

    Parameters
    ----------
    spark : SparkSession
        Supplies the JVM and the Hadoop configuration (credentials, default FS).

    Examples
    --------
    >>> fs = HadoopFS(spark)  # doctest: +SKIP
    >>> fs.exists("file:///tmp")  # doctest: +SKIP
    True
    """

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._gateway = spark.sparkContext._gateway
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str) -> Any:
        return self._path(path).getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        """Return ``path`` with its scheme and authority (``data/x`` -> ``file:/abs/data/x``)."""
        p = self._path(path)
        return str(p.getFileSystem(self._conf).makeQualified(p).toString())

    def exists(self, path: str) -> bool:
        """Return True when ``path`` exists (file or directory)."""
        return bool(self._fs(path).exists(self._path(path)))

    def is_dir(self, path: str) -> bool:
        """Return True when ``path`` is a directory."""
        fs = self._fs(path)
        p = self._path(path)
        return bool(fs.exists(p) and fs.getFileStatus(p).isDirectory())

    def list_files(self, path: str, *, recursive: bool = True) -> list[FileInfo]:
        """List data files under ``path`` (or ``path`` itself), skipping ``_*`` and ``.*`` names.

        Globs (``data/*.csv``) are expanded like Spark does. The result is sorted by path.
        """
        fs = self._fs(path)
        statuses = fs.globStatus(self._path(path)) or []
        out: list[FileInfo] = []
        for status in statuses:
            if not status.isDirectory():
                out.append(_info(status))
                continue
            root = str(status.getPath().toString()).rstrip("/") + "/"
            it = fs.listFiles(status.getPath(), recursive)
            while it.hasNext():
                info = _info(it.next())
                if not _hidden(info.path[len(root) :] if info.path.startswith(root) else info.path):
                    out.append(info)
        return sorted(out, key=lambda f: f.path)

    def list_dirs(self, path: str) -> list[str]:
        """Return the immediate sub-directories of ``path`` (empty when it does not exist)."""
        if not self.exists(path):
            return []
        fs = self._fs(path)
        return sorted(
            str(st.getPath().toString())
            for st in fs.listStatus(self._path(path))
            if st.isDirectory()
        )

    def list_names(self, path: str) -> list[str]:
        """The names directly under folder ``path`` (empty when it does not exist), sorted."""
        if not self.exists(path):
            return []
        return sorted(
            str(st.getPath().getName()) for st in self._fs(path).listStatus(self._path(path))
        )

    def read_bytes(self, path: str, *, max_bytes: int | None = None) -> bytes:
        """Read a small file (or only its first ``max_bytes``)."""
        io = self._jvm.org.apache.commons.io
        stream = self._fs(path).open(self._path(path))
        try:
            source = stream if max_bytes is None else io.input.BoundedInputStream(stream, max_bytes)
            return bytes(io.IOUtils.toByteArray(source))
        finally:
            stream.close()

    def read_text(self, path: str, *, max_bytes: int | None = None) -> str:
        """Read a small UTF-8 file (or only its first ``max_bytes``)."""
        return self.read_bytes(path, max_bytes=max_bytes).decode("utf-8", "replace")

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file, replacing it; readers see the whole file or the old one.

        The content goes to a temporary sibling first and is then renamed over ``path``
        (atomic on local disks and HDFS; object stores write the object on close).
        """
        target = self._path(path)
        fs = self._fs(path)
        fs.mkdirs(target.getParent())
        tmp = self._path(f"{path}.__tmp__")
        out = fs.create(tmp, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()
        self.rename(str(tmp.toString()), str(target.toString()), overwrite=True)

    def write_text(self, path: str, text: str) -> None:
        """:meth:`write_bytes` of UTF-8 text."""
        self.write_bytes(path, text.encode("utf-8"))

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        """Rename ``src`` to ``dst``; with ``overwrite`` an existing file ``dst`` is replaced."""
        jvm = self._jvm
        if overwrite:
            fc = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
                self._path(dst).toUri(), self._conf
            )
            rename_opt = jvm.org.apache.hadoop.fs.Options.Rename
            opts = self._gateway.new_array(rename_opt, 1)
            opts[0] = rename_opt.OVERWRITE
            try:
                fc.rename(self._path(src), self._path(dst), opts)
                return
            except Exception as exc:  # a file system without FileContext support
                logger.debug("FileContext rename failed (%s); falling back to delete + rename", exc)
                self.delete(dst)
        if not self._fs(src).rename(self._path(src), self._path(dst)):
            raise RuntimeError(f"could not rename {src} to {dst}; check permissions on both paths")

    def delete(self, path: str) -> None:
        """Delete ``path`` recursively if it exists."""
        fs = self._fs(path)
        p = self._path(path)
        if fs.exists(p):
            fs.delete(p, True)

    def copy(self, src: str, dst: str) -> None:
        """Copy the file or folder ``src`` to ``dst`` (which must not exist), across file
        systems if need be (``FileUtil.copy``)."""
        if self.exists(dst):
            raise RuntimeError(f"cannot copy {src} to {dst}: {dst} exists; delete it first")
        util = self._jvm.org.apache.hadoop.fs.FileUtil
        src_p, dst_p = self._path(src), self._path(dst)
        if not util.copy(self._fs(src), src_p, self._fs(dst), dst_p, False, self._conf):
            raise RuntimeError(f"could not copy {src} to {dst}; check permissions on both paths")

    def mkdirs(self, path: str) -> None:
        """Create ``path`` and its parents."""
        self._fs(path).mkdirs(self._path(path))


def _info(status: Any) -> FileInfo:
    return FileInfo(
        path=str(status.getPath().toString()),
        size=int(status.getLen()),
        modified_ms=int(status.getModificationTime()),
    )


def _hidden(relative: str) -> bool:
    """Spark skips files and folders whose names start with '_' or '.'; so do we."""
    return any(p.startswith(("_", ".")) for p in relative.split("/") if p)
