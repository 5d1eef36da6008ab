"""Where a job's outputs live: parse an output location into a scheme and a path.

Every output (``train.output``, ``sgd.output``, ``kmeans.output``, evaluation, predictions and
the pipeline's run folder) is a Hadoop-style URI or a POSIX path:

========================  =====================================  ==============================
written                   stands for                             ranks open it with
========================  =====================================  ==============================
``runs/x``, ``/mnt/x``    a POSIX path (shared mount, or local)  ``pyarrow.fs.LocalFileSystem``
``file:/x``, ``file:///x``  the same, explicit                   ``pyarrow.fs.LocalFileSystem``
``dbfs:/x``               Databricks' file system                the ``/dbfs/x`` FUSE mount
``hdfs://nn:8020/x``      HDFS                                   ``pyarrow.fs.HadoopFileSystem``
``s3a://b/x``, ``s3://b/x``  Amazon S3                           ``pyarrow.fs.S3FileSystem``
``gs://b/x``              Google Cloud Storage                   ``pyarrow.fs.GcsFileSystem``
``abfss://c@a.dfs...``    Azure Data Lake Gen2                   fsspec's ``adlfs``
========================  =====================================  ==============================

The driver reaches the same locations through Spark's Hadoop file system
(:mod:`sparkdl.store.hadoop`); a relative path is made absolute on the driver before the ranks
see it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sparkdl.errors import BadInputError

SCHEMES = ("file", "dbfs", "hdfs", "s3a", "s3", "gs", "abfss", "abfs")
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$")
# dbfs:/x is /dbfs/x on every node of a Databricks cluster (the FUSE mount)
DBFS_MOUNT = "/dbfs"


@dataclass(frozen=True)
class Location:
    """A parsed output location: ``scheme`` (``""`` for a POSIX path) and the rest."""

    scheme: str
    path: str  # a POSIX path for "" and "file"; "authority/path" otherwise
    uri: str  # what a Hadoop FileSystem (and a user) reads

    @property
    def posix(self) -> str | None:
        """The POSIX path every node reads this location at, or None (a remote store).

        Examples
        --------
        >>> parse_location("file:///data/x").posix, parse_location("dbfs:/runs/a").posix
        ('/data/x', '/dbfs/runs/a')
        >>> parse_location("hdfs://nn:8020/runs/a").posix is None
        True
        """
        if self.scheme in ("", "file"):
            return self.path
        if self.scheme == "dbfs":
            return DBFS_MOUNT + self.path
        return None

    def parent(self) -> tuple[Location, str]:
        """The location this one is in, and this one's name.

        Examples
        --------
        >>> loc, name = parse_location("hdfs://nn/runs/a/model").parent()
        >>> loc.uri, name
        ('hdfs://nn/runs/a', 'model')
        """
        head, _, name = self.path.rstrip("/").rpartition("/")
        uri_head = self.uri.rstrip("/").rpartition("/")[0]
        return Location(scheme=self.scheme, path=head or "/", uri=uri_head or "/"), name

    def child(self, *names: str) -> Location:
        """The location of ``names`` under this one.

        Examples
        --------
        >>> parse_location("s3a://bucket/runs").child("a", "b.json").uri
        's3a://bucket/runs/a/b.json'
        """
        tail = "/".join(n.strip("/") for n in names if n)
        return Location(
            scheme=self.scheme,
            path=f"{self.path.rstrip('/')}/{tail}",
            uri=f"{self.uri.rstrip('/')}/{tail}",
        )


def parse_location(value: str, *, key: str = "output", cwd: str | None = None) -> Location:
    """Parse an output location; a relative POSIX path is made absolute against ``cwd``.

    Raises
    ------
    BadInputError
        For an empty value or a scheme sparkdl has no file system for; the message names the
        key, the value and the schemes it takes.

    Examples
    --------
    >>> parse_location("/runs/a").uri, parse_location("file:/runs/a").path
    ('/runs/a', '/runs/a')
    >>> parse_location("s3a://bucket/runs/a").path
    'bucket/runs/a'
    >>> parse_location("ftp://host/x", key="train.output")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sparkdl.errors.BadInputError: train.output='ftp://host/x': no file system for scheme 'ftp'...
    """
    text = str(value).strip()
    if not text:
        raise BadInputError(f"{key} is empty: give a folder path or a URI such as hdfs://nn/x")
    match = _URI.match(text)
    if match is None or len(match.group(1)) == 1:  # no scheme (or a Windows drive letter)
        path = os.path.normpath(os.path.join(cwd or os.getcwd(), text))
        return Location(scheme="", path=path, uri=path)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in SCHEMES:
        raise BadInputError(
            f"{key}={text!r}: no file system for scheme {scheme!r}. sparkdl writes outputs to "
            f"{', '.join(s + ':' for s in SCHEMES)} URIs or a POSIX path"
        )
    if scheme == "file":
        path = "/" + rest.lstrip("/")  # file:/x and file:///x
        return Location(scheme="file", path=os.path.normpath(path), uri=f"file://{path}")
    if scheme == "dbfs":
        path = "/" + rest.lstrip("/")
        return Location(scheme="dbfs", path=path, uri=f"dbfs:{path}")
    if not rest.startswith("//") or not rest[2:].split("/", 1)[0]:
        raise BadInputError(
            f"{key}={text!r}: a {scheme}: URI needs an authority, like {scheme}://host-or-bucket/path"
        )
    return Location(scheme=scheme, path=rest[2:].rstrip("/"), uri=text.rstrip("/"))
