"""Rank output on the driver: each barrier task forwards its rank's lines, the driver prints them.

A rank's output already lands in its executor's log (:func:`sparkdl.launch.child.run_in_child`
echoes every line to the task's stderr). For a user at a notebook or a ``spark-submit`` console
that log is out of sight, so the task also batches the lines and PUTs them, signed with the
launch's secret, to the driver's rendezvous server under ``/sparkdl-output/rank-<r>-<seq>``
(:class:`OutputForwarder`); the driver's stage watcher takes each batch out of the server's
store once it has handed the lines on (:func:`drain`), so the store holds only what has not
been printed yet.

Lines longer than :data:`MAX_LINE` characters are cut, and a batch holds at most
:data:`MAX_BATCH` lines and :data:`MAX_BATCH_BYTES` bytes: a rank that prints a progress bar
cannot make one request too large.
When the driver cannot be reached the forwarder stops forwarding (the executor log keeps every
line) and says so once.

Examples
--------
>>> batch_key(3, 12)
'rank-00003-000000012'
>>> parse_key("rank-00003-000000012")
(3, 12)
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparkdl.launch.rendezvous import signed_put

if TYPE_CHECKING:
    from sparkdl.launch.rendezvous import RendezvousService

logger = logging.getLogger(__name__)

SCOPE = "sparkdl-output"
MAX_LINE = 2000
MAX_BATCH = 200
MAX_BATCH_BYTES = 256 * 1024  # well under the rendezvous server's 1 MiB body limit
FLUSH_S = 0.5
OutputSink = Callable[[int, str], None]


def batch_key(rank: int, seq: int) -> str:
    """The key of a rank's ``seq``-th batch (keys sort in order of rank, then of batch)."""
    return f"rank-{rank:05d}-{seq:09d}"


def parse_key(key: str) -> tuple[int, int]:
    """The (rank, seq) a key of :func:`batch_key` names."""
    _, rank, seq = key.split("-")
    return int(rank), int(seq)


def print_rank_line(rank: int, line: str) -> None:
    """The default sink: ``[rank r] line`` on the driver's stderr (a notebook cell's output)."""
    print(f"[rank {rank}] {line}", file=sys.stderr, flush=True)


class OutputForwarder:
    """In a barrier task: echo each of a rank's lines to stderr and forward them to the driver.

    Parameters
    ----------
    addr, port : str, int
        The driver's rendezvous server.
    secret : bytes
        The launch's secret (the server refuses unsigned requests).
    rank : int
        The rank whose lines these are.
    label : str
        The prefix the executor log's copy of each line carries (``[rank r/n stage s
        attempt a]``); the driver's copy goes without it, its sink gets the rank apart.
    echo : bool
        Also write each line to this task's stderr, the executor log (False on a ``local``
        master, whose executor log is the driver's console: each line would show twice).
    """

    def __init__(
        self, *, addr: str, port: int, secret: bytes, rank: int, label: str = "", echo: bool = True
    ) -> None:
        self._target = (addr, port, secret)
        self.rank = rank
        self._echo = echo
        self._prefix = f"{label} " if label else ""
        self._lines: list[str] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # one batch in flight: they arrive in order
        self._stop = threading.Event()
        self._broken = False
        self._thread = threading.Thread(target=self._run, name="sparkdl-output", daemon=True)

    def __enter__(self) -> OutputForwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def __call__(self, line: str) -> None:
        """Take one output line (the ``echo`` of :func:`~sparkdl.launch.child.run_in_child`)."""
        if self._echo:
            print(line, file=sys.stderr, flush=True)
        if self._prefix and line.startswith(self._prefix):
            line = line[len(self._prefix) :]
        with self._lock:
            self._lines.append(line[:MAX_LINE])
            full = len(self._lines) >= MAX_BATCH
        if full:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def flush(self) -> None:
        """Send what has gathered since the last batch, a batch at a time, in order."""
        with self._sending:
            self._flush()

    def _flush(self) -> None:
        while True:
            with self._lock:
                if not self._lines or self._broken:
                    return
                batch = take_batch(self._lines)
                key = batch_key(self.rank, self._seq)
                self._seq += 1
            addr, port, secret = self._target
            try:
                signed_put(
                    addr=addr,
                    port=port,
                    path=f"/{SCOPE}/{key}",
                    body=batch,
                    secret=secret,
                    timeout_s=10,
                )
            except OSError as exc:
                self._broken = True
                print(
                    f"sparkdl: stopped forwarding rank {self.rank}'s output to the driver "
                    f"({exc}); the executor log keeps every line",
                    file=sys.stderr,
                    flush=True,
                )
                return


def take_batch(lines: list[str]) -> bytes:
    """Remove the next batch from ``lines`` and return it as JSON: at most :data:`MAX_BATCH`
    lines and :data:`MAX_BATCH_BYTES` bytes (non-ASCII text is escaped, up to 6 bytes a
    character), at least one line.

    Examples
    --------
    >>> lines = ["é" * MAX_LINE] * 50
    >>> len(take_batch(lines)) <= MAX_BATCH_BYTES, len(lines)
    (True, 29)
    """
    encoded: list[str] = []
    size = 2
    while lines and len(encoded) < MAX_BATCH:
        item = json.dumps(lines[0])
        if encoded and size + len(item) + 1 > MAX_BATCH_BYTES:
            break
        encoded.append(item)
        size += len(item) + 1
        lines.pop(0)
    return f"[{','.join(encoded)}]".encode()


def drain(rdv: RendezvousService, sink: OutputSink) -> int:
    """Hand every batch the ranks have sent to ``sink``, line by line, and drop it from the store.

    Returns the number of lines handed on. Batches go in order of rank, then of batch.
    """
    handed = 0
    for key, body in sorted(rdv.take_scope_items(SCOPE).items()):
        rank, _ = parse_key(key)
        for line in json.loads(body):
            sink(rank, str(line))
            handed += 1
    return handed
