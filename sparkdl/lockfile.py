"""What a lock file says and where it lives: its holder record, the stale rules, and the file
operations on a local disk or through Hadoop's FileSystem (see :mod:`sparkdl.lock`)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sparkdl.errors import BadInputError
from sparkdl.files import write_text

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOCK_NAME = "_LOCK"
FORMAT = "sparkdl-lock/1"
STALE_ENV = "SPARKDL_LOCK_STALE_S"
DEFAULT_STALE_S = 600.0
_SECRET = re.compile(r"(secret|password|passwd|token|credential|access.?key)", re.IGNORECASE)


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about its holder."""

    token: str
    user: str
    host: str
    pid: int
    pid_started: float | None
    command: str
    what: str
    started_unix: float
    refreshed_unix: float
    format: str = FORMAT

    def to_json(self) -> str:
        """The lock file's text (with readable times next to the numbers)."""
        data = asdict(self)
        data["started"] = _iso(self.started_unix)
        data["refreshed"] = _iso(self.refreshed_unix)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockHolder:
        """Parse a lock file; ``ValueError`` when it is not one (empty, partial, foreign).

        Examples
        --------
        >>> h = LockHolder.from_json(current_holder(what="x").to_json())
        >>> h.pid == os.getpid()
        True
        """
        try:
            data = json.loads(text)
            return cls(
                token=str(data["token"]),
                user=str(data["user"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                pid_started=None if data["pid_started"] is None else float(data["pid_started"]),
                command=str(data["command"]),
                what=str(data["what"]),
                started_unix=float(data["started_unix"]),
                refreshed_unix=float(data["refreshed_unix"]),
                format=str(data.get("format", "")),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a sparkdl lock file: {exc}") from exc

    def describe(self, *, now: float) -> str:
        """One line naming the holder, for error and warning messages."""
        return (
            f"user {self.user} on host {self.host}, pid {self.pid}, command {self.command!r}, "
            f"started {_iso(self.started_unix)}, last refreshed {now - self.refreshed_unix:.0f} s ago"
        )


def current_holder(*, what: str) -> LockHolder:
    """A holder record for this process, now.

    Examples
    --------
    >>> current_holder(what="train.output").host == socket.gethostname()
    True
    """
    now = time.time()
    return LockHolder(
        token=uuid.uuid4().hex,
        user=_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        pid_started=_process_started(os.getpid()),
        command=_command(sys.argv),
        what=what,
        started_unix=now,
        refreshed_unix=now,
    )


def stale_reason(
    holder: LockHolder, *, now: float, stale_s: float, host: str | None = None
) -> str | None:
    """Why ``holder``'s lock is stale, or None while it is live (see the module docstring).

    Examples
    --------
    >>> import dataclasses
    >>> me = current_holder(what="x")
    >>> stale_reason(me, now=time.time(), stale_s=600) is None
    True
    >>> old = dataclasses.replace(me, host="elsewhere", refreshed_unix=time.time() - 900)
    >>> stale_reason(old, now=time.time(), stale_s=600)
    'not refreshed for 900 s (more than 600 s, SPARKDL_LOCK_STALE_S)'
    """
    if holder.host == (host or socket.gethostname()):
        if _process_alive(holder.pid, holder.pid_started):
            return None
        return f"its process {holder.pid} on this host is gone"
    age = now - holder.refreshed_unix
    if age > stale_s:
        return f"not refreshed for {age:.0f} s (more than {stale_s:.0f} s, {STALE_ENV})"
    return None


def stale_seconds() -> float:
    """The stale time from ``SPARKDL_LOCK_STALE_S`` (default 600 s).

    Examples
    --------
    >>> stale_seconds() > 0
    True
    """
    raw = os.environ.get(STALE_ENV, "").strip()
    if not raw:
        return DEFAULT_STALE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise BadInputError(
            f"{STALE_ENV}={raw!r} is not a positive number of seconds; unset it for the default "
            f"({DEFAULT_STALE_S:.0f} s) or set e.g. {STALE_ENV}=600"
        )
    return value


class LockStore(Protocol):
    """The file operations a lock needs, on one kind of file system."""

    def create_new(self, path: str, text: str) -> bool:
        """Create ``path`` holding ``text`` atomically; False when it already exists."""

    def read(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""

    def replace(self, path: str, text: str) -> None:
        """Replace the file's text (readers see the old or the new text)."""

    def delete(self, path: str) -> None:
        """Delete the file if it exists."""

    def age_s(self, path: str) -> float | None:
        """Seconds since the file was last modified, or None when it does not exist."""


class LocalStore:
    """Lock files on a local (or NFS-mounted) disk."""

    def create_new(self, path: str, text: str) -> bool:
        """Create ``path`` with ``O_CREAT | O_EXCL``; False when it exists."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True

    def read(self, path: str) -> str | None:
        """The file's text, or None when missing."""
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return None

    def replace(self, path: str, text: str) -> None:
        """Write a sibling and rename it over ``path``."""
        write_text(Path(path), text)

    def delete(self, path: str) -> None:
        """Delete ``path`` if present."""
        Path(path).unlink(missing_ok=True)

    def age_s(self, path: str) -> float | None:
        """Seconds since ``path`` was modified."""
        try:
            return time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return None


class HadoopStore:
    """Lock files through Hadoop's FileSystem (``hdfs://``, ``s3a://``, ``dbfs:/``).

    ``create(path, overwrite=false)`` is atomic on HDFS; on object stores it is as good as the
    store's own conditional create.
    """

    def __init__(self, spark: SparkSession) -> None:
        from sparkdl.data.fs import HadoopFS

        self._files = HadoopFS(spark)
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs_path(self, path: str) -> tuple[object, object]:
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    def create_new(self, path: str, text: str) -> bool:
        """Create ``path`` with ``FileSystem.create(path, false)``; False when it exists."""
        from py4j.protocol import Py4JJavaError

        fs, p = self._fs_path(path)
        try:
            out = fs.create(p, False)
        except Py4JJavaError as exc:
            if "FileAlreadyExistsException" in str(exc) or fs.exists(p):
                return False
            raise
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        return True

    def read(self, path: str) -> str | None:
        """The file's text, or None when missing."""
        from py4j.protocol import Py4JJavaError

        try:
            return self._files.read_text(path) if self._files.exists(path) else None
        except Py4JJavaError as exc:
            if "FileNotFoundException" in str(exc):
                return None
            raise

    def replace(self, path: str, text: str) -> None:
        """Rewrite ``path`` through a renamed temporary sibling."""
        self._files.write_text(path, text)

    def delete(self, path: str) -> None:
        """Delete ``path`` if present."""
        self._files.delete(path)

    def age_s(self, path: str) -> float | None:
        """Seconds since ``path`` was modified (by the file system's clock)."""
        fs, p = self._fs_path(path)
        if not fs.exists(p):
            return None
        return time.time() - fs.getFileStatus(p).getModificationTime() / 1000.0


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        return f"uid {os.getuid()}"


def _command(argv: list[str]) -> str:
    """The command line, as ``sparkdl <args>``, with secret-looking values hidden."""
    if not argv:
        return "python"
    prog = argv[0]
    name = "sparkdl" if prog.endswith(("sparkdl/cli.py", "sparkdl")) else Path(prog).name
    args = [
        f"{a.split('=', 1)[0]}=***" if "=" in a and _SECRET.search(a.split("=", 1)[0]) else a
        for a in argv[1:]
    ]
    return " ".join([name, *args])[:300]


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _process_alive(pid: int, started: float | None) -> bool:
    """True when ``pid`` runs and, if its start time is known, is the same process."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # access denied: it exists
        return True
