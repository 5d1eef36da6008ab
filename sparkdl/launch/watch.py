"""Driver-side watch over a running barrier stage: progress reports and rank heartbeats.

Ranks PUT small JSON documents to the driver's rendezvous server, each signed with the
launch's secret (:func:`send`; the server refuses anything unsigned, so only real ranks' reports
reach the watcher): progress reports under ``/sparkdl-progress/<key>`` and heartbeats under
``/sparkdl-heartbeat/rank-<r>``. The watcher
hands each new report to a callback and, when heartbeats are expected, cancels the stage once
a rank has been silent for longer than its timeout: a stalled rank then fails the job with a
clear message instead of holding it until ``spark.barrier.sync.timeout``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sparkdl.launch.output import OutputSink, drain
from sparkdl.launch.rendezvous import SECRET_ENV, RendezvousService, signed_put

logger = logging.getLogger(__name__)

REPORT_SCOPE = "sparkdl-progress"
HEARTBEAT_SCOPE = "sparkdl-heartbeat"
Reporter = Callable[[str, Any], None]


def send(
    addr: str,
    port: int,
    scope: str,
    key: str,
    value: Any,
    *,
    secret: bytes | None = None,
    timeout_s: float = 10,
) -> None:
    """PUT one JSON value to the driver, signed with the launch's secret (called from ranks).

    Parameters
    ----------
    addr, port : str, int
        The driver's rendezvous server (``HOROVOD_GLOO_RENDEZVOUS_ADDR`` / ``_PORT``).
    scope, key : str
        Where the value goes: ``/<scope>/<key>``. One sender per key: each request must carry
        a higher sequence number than the last one the server accepted for its path.
    value : JSON-serialisable
        The report.
    secret : bytes, optional
        The launch's secret; default: ``SPARKDL_RENDEZVOUS_SECRET`` from the environment,
        which the launcher sets for every rank.

    Raises
    ------
    OSError
        When the server cannot be reached or refuses the request (as ``urllib.error.HTTPError``),
        or no secret is given and the environment holds none (``PermissionError``).

    Examples
    --------
    >>> send("127.0.0.1", 1, REPORT_SCOPE, "epoch-00000", {"loss": 0.5})  # doctest: +SKIP
    """
    if secret is None:
        secret = secret_from_env()
    body = json.dumps(value).encode()
    signed_put(
        addr=addr, port=port, path=f"/{scope}/{key}", body=body, secret=secret, timeout_s=timeout_s
    )


def secret_from_env() -> bytes:
    """The launch's secret as the launcher handed it to this rank.

    Raises
    ------
    PermissionError
        When ``SPARKDL_RENDEZVOUS_SECRET`` is unset or not hex: the driver would refuse the
        request anyway.

    Examples
    --------
    >>> import os
    >>> os.environ[SECRET_ENV] = "00ff"
    >>> secret_from_env()
    b'\\x00\\xff'
    >>> del os.environ[SECRET_ENV]
    """
    raw = os.environ.get(SECRET_ENV, "")
    try:
        secret = bytes.fromhex(raw)
    except ValueError:
        secret = b""
    if not secret:
        raise PermissionError(
            f"{SECRET_ENV} is unset or not hex in this process, so the driver would refuse its "
            "reports; run the function through BarrierLauncher, which sets it for every rank"
        )
    return secret


class StageWatcher:
    """Watch one barrier stage from the driver (use as a context manager around the job).

    Parameters
    ----------
    rdv : RendezvousService
        The stage's rendezvous server, where ranks PUT reports and heartbeats.
    on_report : callable, optional
        Receives ``(key, value)`` for each new progress report.
    workers : int
        Number of ranks expected to send heartbeats.
    heartbeat_timeout_s : float, optional
        A rank silent for longer than this is declared stalled; None disables the check.
    first_heartbeat_s : float
        Grace period for the first heartbeat (process start, imports, Horovod init).
    cancel : callable
        Called with the reason when a rank stalls (cancels the Spark job group).
    on_output : callable, optional
        Receives ``(rank, line)`` for each line a rank's task forwarded
        (:mod:`sparkdl.launch.output`); the last lines are handed on when the stage ends.
    """

    def __init__(
        self,
        rdv: RendezvousService,
        *,
        on_report: Reporter | None,
        workers: int,
        heartbeat_timeout_s: float | None,
        first_heartbeat_s: float,
        cancel: Callable[[str], None],
        on_output: OutputSink | None = None,
    ) -> None:
        self.rdv = rdv
        self.on_report = on_report
        self.on_output = on_output
        self.workers = workers
        self.timeout = heartbeat_timeout_s
        self.first = first_heartbeat_s
        self.cancel = cancel
        self.stall_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sparkdl-stage-watch", daemon=True)

    def __enter__(self) -> StageWatcher:
        if self.on_report is not None or self.timeout is not None or self.on_output is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: set[str] = set()
        started = time.monotonic()
        last_beat: dict[str, tuple[bytes, float]] = {}
        while True:
            final = self._stop.wait(0.5)
            if self.on_report is not None:
                for key, value in sorted(self.rdv.scope_items(REPORT_SCOPE).items()):
                    if key not in seen:
                        seen.add(key)
                        try:
                            self.on_report(key, json.loads(value))
                        except Exception:  # a reporting bug must not fail the training
                            logger.exception("progress report %s could not be handled", key)
            if self.on_output is not None:
                try:
                    drain(self.rdv, self.on_output)
                except Exception:  # nor a printing one
                    logger.exception("rank output could not be handed on")
            if final:
                return
            if self.timeout is not None and self.stall_reason is None:
                self._check_heartbeats(last_beat, started)

    def _check_heartbeats(self, last_beat: dict[str, tuple[bytes, float]], started: float) -> None:
        now = time.monotonic()
        for key, value in self.rdv.scope_items(HEARTBEAT_SCOPE).items():
            if last_beat.get(key, (b"", 0.0))[0] != value:
                last_beat[key] = (value, now)
        silent = []
        for rank in range(self.workers):
            key = f"rank-{rank}"
            if key in last_beat:
                if now - last_beat[key][1] > self.timeout:  # type: ignore[operator]
                    silent.append(f"rank {rank} silent for {now - last_beat[key][1]:.0f} s")
            elif now - started > self.first + self.timeout:  # type: ignore[operator]
                silent.append(f"rank {rank} sent no heartbeat in {now - started:.0f} s")
        if silent:
            self.stall_reason = (
                f"stalled: {', '.join(silent)} (launch.stall_timeout_s={self.timeout:g}); the stage "
                "was cancelled. Look at that rank's last output lines in the executor log."
            )
            logger.error("%s", self.stall_reason)
            self.cancel(self.stall_reason)
