"""Horovod's Gloo rendezvous server, run on the driver and bound to the driver's address only.

Horovod's own ``RendezvousServer.start()`` binds to every interface on a random port. Here the
same request handler serves on one address, and the rank plan (computed by the barrier tasks,
which alone see the executor addresses) is posted by partition 0 before any rank starts Gloo.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import urllib.request
from types import TracebackType

from sparkdl.launch.plan import RankSlot

logger = logging.getLogger(__name__)

_PLAN_SCOPE = "sparkdl-plan"


def _handler_class() -> type:
    from horovod.runner.http.http_server import RendezvousHandler

    class _PlanAwareHandler(RendezvousHandler):
        """Horovod's handler, plus one PUT that installs the rank plan."""

        def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
            parts = self.path.split("/")
            if len(parts) == 3 and parts[1] == _PLAN_SCOPE:
                length = int(self.headers.get("Content-Length", "0"))
                slots = [RankSlot(**s) for s in json.loads(self.rfile.read(length))]
                self.server.init(slots)
                self.server.sparkdl_plan = slots
                self.send_status_code(200)
                return
            super().do_PUT()

    return _PlanAwareHandler


def resolve_ipv4(host: str) -> str:
    """Return an IPv4 address for ``host`` (names are resolved once, here).

    Examples
    --------
    >>> resolve_ipv4("localhost")
    '127.0.0.1'
    """
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise RuntimeError(
            f"cannot resolve host {host!r} (spark.driver.host) to an IPv4 address: {exc}; set "
            "spark.driver.host to an address the executors can reach"
        ) from exc


class RendezvousService:
    """A Gloo rendezvous server for one launch attempt; use it as a context manager.

    Parameters
    ----------
    host : str
        The driver address to bind to and to hand to the ranks.
    verbose : bool
        Log every key put into the store.

    Examples
    --------
    >>> with RendezvousService(host="127.0.0.1") as rdv:  # doctest: +SKIP
    ...     rdv.port > 0
    True
    """

    def __init__(self, *, host: str, verbose: bool = False) -> None:
        from horovod.runner.http.http_server import RendezvousHTTPServer

        self.host = resolve_ipv4(host)
        self._httpd = RendezvousHTTPServer((self.host, 0), _handler_class(), int(verbose))
        self._httpd.sparkdl_plan = None
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sparkdl-rendezvous", daemon=True
        )
        self._thread.start()
        logger.info("Horovod rendezvous server listening on %s:%d", self.host, self.port)

    @property
    def plan(self) -> list[RankSlot] | None:
        """The rank plan posted by partition 0, once it has arrived."""
        return self._httpd.sparkdl_plan

    def scope_items(self, scope: str) -> dict[str, bytes]:
        """Return a copy of what ranks have PUT under ``scope`` (progress reports, say)."""
        with self._httpd.cache_lock:
            return dict(self._httpd.cache.get(scope, {}))

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> RendezvousService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def post_plan(*, addr: str, port: int, slots: list[RankSlot], timeout_s: float) -> None:
    """Send the rank plan to the driver's rendezvous server (called by partition 0).

    Examples
    --------
    >>> post_plan(addr="127.0.0.1", port=1, slots=[], timeout_s=1)  # doctest: +SKIP
    """
    body = json.dumps([dataclasses.asdict(s) for s in slots]).encode()
    req = urllib.request.Request(
        f"http://{addr}:{port}/{_PLAN_SCOPE}/plan", data=body, method="PUT"
    )
    req.add_header("Content-Length", str(len(body)))
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            if resp.status != 200:
                raise RuntimeError(f"rendezvous server answered {resp.status} to the rank plan")
    except OSError as exc:
        raise RuntimeError(
            f"cannot reach the Horovod rendezvous server on the driver at {addr}:{port}: {exc}. "
            "Executors must be able to open connections to spark.driver.host; check firewalls "
            "or set spark.driver.host to a reachable address."
        ) from exc
