"""Before a job writes anything: can the driver write its output, and can the executors see it?

With a non-local master, an output that only the driver's node can see (a path on its local
disk, a ``/tmp`` folder) would scatter files across the nodes' disks: rank 0 writes the model
and the checkpoints on its node, the driver writes ``metrics.json`` on its own, and a retried
stage on another node cannot find the checkpoints. :func:`check_output` refuses such a location
before any stage starts, with the key, the path and the fix.
"""

from __future__ import annotations

import logging
import secrets
import socket
from typing import TYPE_CHECKING

from sparkdl.errors import BadInputError, InfraError
from sparkdl.store.hadoop import HadoopStore
from sparkdl.store.uri import Location, parse_location

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

# (application id, location) the executors were seen to reach: what lies below one of them is
# on the same file system, so the pipeline's steps under a checked run folder are not probed again
_SHARED: set[tuple[str, str]] = set()

FIX = (
    "use a folder every node mounts (NFS, /dbfs) or a cluster file system URI "
    "(hdfs://, s3a://, abfss://, dbfs:/)"
)


def one_node(master: str) -> bool:
    """Whether ``master`` runs every executor in the driver's process (``local``, ``local[N]``).

    Examples
    --------
    >>> one_node("local[2]"), one_node("local-cluster[2,1,1024]"), one_node("yarn")
    (True, False, False)
    """
    return master == "local" or master.startswith("local[")


def _probe(uri: str, name: str, token: str) -> tuple[str, str]:
    """Executor side: read the driver's probe and write one of its own; ``("", host)`` when
    both worked, else the reason and the host."""
    from sparkdl.store.arrow import ArrowStore

    host = socket.gethostname()
    store = ArrowStore(uri)
    try:
        seen = store.read_bytes(name).decode()
    except FileNotFoundError:
        return "it cannot see the file the driver wrote there", host
    except Exception as exc:  # any failure of the executor's file system is the answer
        return f"it cannot read there ({type(exc).__name__}: {exc})", host
    if seen != token:
        return "it sees another file under that name (a different disk)", host
    mine = f"{name}-{secrets.token_hex(4)}"
    try:
        store.write_bytes(mine, b"ok")
        store.delete(mine)
    except Exception as exc:
        return f"it cannot write there ({type(exc).__name__}: {exc})", host
    return "", host


def check_output(spark: SparkSession, output: str | Location, *, key: str) -> Location:
    """Refuse ``output`` unless the driver can write it and, with a non-local master, every
    executor probed can read what the driver wrote and write there too; return its location.

    Raises
    ------
    BadInputError
        When the driver cannot write ``output`` (permissions, a full disk, a file in the way),
        or an executor cannot see or write it: the message names ``key``, the location and
        the fix.

    Examples
    --------
    >>> check_output(spark, "/mnt/shared/runs/a", key="train.output").uri  # doctest: +SKIP
    '/mnt/shared/runs/a'
    """
    loc = output if isinstance(output, Location) else parse_location(output, key=key)
    driver = HadoopStore(spark, loc)
    name, token = f".sparkdl-probe-{secrets.token_hex(6)}", secrets.token_hex(16)
    try:
        driver.write_bytes(name, token.encode())
    except InfraError as exc:
        raise BadInputError(
            f"{key}={loc.uri} cannot be written from the driver: {exc}. Choose a writable "
            f"location for {key}"
        ) from exc
    try:
        sc = spark.sparkContext
        if one_node(sc.master) or _under_checked(sc.applicationId, loc.uri):
            return loc
        tasks = max(1, sc.defaultParallelism)
        uri = loc.uri
        answers = (
            sc.parallelize(range(tasks), tasks).map(lambda _: _probe(uri, name, token)).collect()
        )
        failed = sorted({(why, host) for why, host in answers if why})
        if failed:
            why, host = failed[0]
            raise BadInputError(
                f"{key}={loc.uri} is not shared with the executors: an executor on {host} "
                f"checked it and {why} ({len(failed)} of {tasks} probes failed). With master "
                f"{sc.master} every node must reach {key}: {FIX}"
            )
        logger.info("%s=%s: writable and seen by the executors (%d probes)", key, loc.uri, tasks)
        _SHARED.add((sc.applicationId, loc.uri))
        return loc
    finally:
        driver.delete(name)


def _under_checked(app: str, uri: str) -> bool:
    """Whether ``uri`` is, or lies below, a location this application's executors reached.

    Examples
    --------
    >>> _SHARED.add(("app-1", "/mnt/shared/run"))
    >>> _under_checked("app-1", "/mnt/shared/run/train"), _under_checked("app-1", "/mnt/sharedx")
    (True, False)
    >>> _under_checked("app-2", "/mnt/shared/run/train")
    False
    """
    return any(a == app and (uri == u or uri.startswith(u.rstrip("/") + "/")) for a, u in _SHARED)
