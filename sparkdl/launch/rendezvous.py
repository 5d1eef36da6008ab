"""Horovod's Gloo rendezvous server, run on the driver, bound to the driver's address only.

Horovod's own ``RendezvousServer.start()`` binds to every interface on a random port. Here the
same request handler serves on one address, and the rank plan (computed by the barrier tasks,
which alone see the executor addresses) is posted by the tasks before any rank starts Gloo.

Who may do what (see README, "Security"):

- sparkdl's own scopes (``/sparkdl-*``: the plan, progress reports, heartbeats) take a request
  only when it carries ``X-Sparkdl-Auth``, an HMAC-SHA256 of its method, path, sequence number
  and body under the launch's secret, and a sequence number above the last one accepted for
  that path (so a recorded request cannot be replayed). Anything else gets 403 and changes
  nothing. The secret travels to the tasks in the Spark task closure and to the ranks in
  ``SPARKDL_RENDEZVOUS_SECRET``.
- Horovod's Gloo scopes are read and written by Horovod's C++ ``HTTPStore``, which cannot sign
  a request. They are refused before the authenticated plan has arrived; afterwards only the
  addresses that sent an authenticated plan (the barrier tasks' hosts) may use them, and a key
  already set may not be changed (Gloo writes each key once; a retry writes the same bytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
import urllib.request
from email.message import Message
from types import TracebackType

from sparkdl.errors import ClusterMisfitError, InfraError
from sparkdl.launch.plan import RankSlot

logger = logging.getLogger(__name__)

SECRET_ENV = "SPARKDL_RENDEZVOUS_SECRET"
AUTH_HEADER = "X-Sparkdl-Auth"
SEQ_HEADER = "X-Sparkdl-Seq"
_PLAN_SCOPE = "sparkdl-plan"
_OWN_SCOPES = "sparkdl-"
# Every body here is small: a plan, a JSON report, a Gloo address list.
_MAX_BODY = 1 << 20
_seq_lock = threading.Lock()
_last_seq = 0


def sign(secret: bytes, *, method: str, path: str, seq: int, body: bytes) -> str:
    """The ``X-Sparkdl-Auth`` value of one request: HMAC-SHA256 over what the server acts on.

    Examples
    --------
    >>> len(sign(b"k", method="PUT", path="/sparkdl-progress/a", seq=1, body=b"{}"))
    64
    """
    head = f"{method}\n{path}\n{seq}\n".encode()
    return hmac.new(secret, head + body, hashlib.sha256).hexdigest()


def next_seq() -> int:
    """A number above any this process handed out before (nanoseconds since the epoch).

    Examples
    --------
    >>> next_seq() < next_seq()
    True
    """
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns())
        return _last_seq


def signed_put(
    *, addr: str, port: int, path: str, body: bytes, secret: bytes, timeout_s: float
) -> None:
    """PUT ``body`` to ``path`` on the driver's server with proof of ``secret``.

    Raises
    ------
    OSError
        When the server cannot be reached or refuses the request (``urllib.error.HTTPError``).

    Examples
    --------
    >>> signed_put(addr="127.0.0.1", port=1, path="/sparkdl-progress/x", body=b"{}",
    ...            secret=b"k", timeout_s=1)  # doctest: +SKIP
    """
    seq = next_seq()
    req = urllib.request.Request(f"http://{addr}:{port}{path}", data=body, method="PUT")
    req.add_header("Content-Length", str(len(body)))
    req.add_header(SEQ_HEADER, str(seq))
    req.add_header(AUTH_HEADER, sign(secret, method="PUT", path=path, seq=seq, body=body))
    urllib.request.urlopen(req, timeout=timeout_s).close()


class _Guard:
    """What the server has accepted so far: the plan, the tasks' addresses, sequence numbers."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.plan: list[RankSlot] | None = None
        self.peers: set[str] = set()
        self.seqs: dict[str, int] = {}

    def authentic(self, *, method: str, path: str, headers: Message, body: bytes) -> bool:
        """True when the request proves the secret with a fresh sequence number."""
        proof, raw_seq = str(headers.get(AUTH_HEADER, "")), str(headers.get(SEQ_HEADER, ""))
        if not raw_seq.isdigit() or len(raw_seq) > 20:
            return False
        seq = int(raw_seq)
        want = sign(self.secret, method=method, path=path, seq=seq, body=body)
        if not hmac.compare_digest(proof.encode(), want.encode()):
            return False
        with self.lock:
            if seq <= self.seqs.get(path, 0):
                return False
            self.seqs[path] = seq
        return True

    def gloo_peer(self, host: str) -> bool:
        """True when ``host`` may use Horovod's scopes (an authenticated task's address)."""
        with self.lock:
            return self.plan is not None and host in self.peers


def _handler_class() -> type:
    from horovod.runner.http.http_server import RendezvousHandler

    class _GuardedHandler(RendezvousHandler):
        """Horovod's handler behind sparkdl's checks, plus the PUT that installs the plan."""

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self._admitted(b""):
                super().do_GET()

        def do_DELETE(self) -> None:  # noqa: N802
            if self._admitted(b""):
                super().do_DELETE()

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body()
            if body is None or not self._admitted(body):
                return
            _, scope, key = self.path.split("/")
            if scope == _PLAN_SCOPE:
                self.send_status_code(self._install_plan(body))
            elif scope.startswith(_OWN_SCOPES):
                self._put_value(scope, key, body)
                self.send_status_code(200)
            else:
                self.send_status_code(self._put_once(scope, key, body))

        def _admitted(self, body: bytes) -> bool:
            """Check the request; answer 400 or 403 and return False when it may not go on."""
            parts = self.path.split("/")
            if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
                return self._refuse(400, "malformed path")
            guard: _Guard = self.server.sparkdl_guard
            host = self.client_address[0]
            if parts[1].startswith(_OWN_SCOPES):
                if guard.authentic(
                    method=self.command, path=self.path, headers=self.headers, body=body
                ):
                    return True
                return self._refuse(403, "no valid proof of the launch secret")
            if guard.gloo_peer(host):
                return True
            return self._refuse(403, "not a barrier task's address, or before the rank plan")

        def _body(self) -> bytes | None:
            raw = self.headers.get("Content-Length", "")
            if not raw.isdigit() or int(raw) > _MAX_BODY:
                self._refuse(400 if not raw.isdigit() else 413, f"body length {raw[:20]!r}")
                return None
            try:
                return bytes(self.rfile.read(int(raw)))
            except OSError:  # includes a timeout: the client stopped sending
                self._refuse(408, "incomplete body")
                return None

        def _install_plan(self, body: bytes) -> int:
            try:
                slots = [RankSlot(**s) for s in json.loads(body)]
            except (ValueError, TypeError) as exc:
                logger.warning("rendezvous: an authenticated rank plan is unreadable: %s", exc)
                return 400
            guard: _Guard = self.server.sparkdl_guard
            with guard.lock:
                if guard.plan is None:
                    self.server.init(slots)
                    guard.plan = slots
                if guard.plan == slots:
                    guard.peers.add(self.client_address[0])
                    return 200
            logger.warning("rendezvous: a barrier task posted another rank plan; kept the first")
            return 409

        def _put_once(self, scope: str, key: str, body: bytes) -> int:
            with self.server.cache_lock:
                values = self.server.cache.setdefault(scope, {})
                if values.setdefault(key, body) == body:
                    return 200
            self._log_refusal(409, "a Gloo key is set once; this would change it")
            return 409

        def do_HEAD(self) -> None:  # noqa: N802
            # SimpleHTTPRequestHandler's HEAD would describe files in the driver's directory.
            self._refuse(405, "HEAD is not part of the rendezvous protocol")

        def _refuse(self, status: int, why: str) -> bool:
            self._log_refusal(status, why)
            self.send_status_code(status)
            return False

        def _log_refusal(self, status: int, why: str) -> None:
            logger.warning(
                "rendezvous: refused %s %r from %s (%d): %s",
                self.command,
                self.path[:200],
                self.client_address[0],
                status,
                why,
            )

    return _GuardedHandler


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
        raise ClusterMisfitError(
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

    Attributes
    ----------
    secret : bytes
        This launch's random secret: requests to sparkdl's scopes must prove it. Hand it to
        the barrier tasks in their closure and to the ranks as ``SPARKDL_RENDEZVOUS_SECRET``;
        never log it.

    Examples
    --------
    >>> with RendezvousService(host="127.0.0.1") as rdv:  # doctest: +SKIP
    ...     rdv.port > 0
    True
    """

    def __init__(self, *, host: str, verbose: bool = False) -> None:
        from horovod.runner.http.http_server import RendezvousHTTPServer

        self.host = resolve_ipv4(host)
        self.secret = secrets.token_bytes(32)
        self._httpd = RendezvousHTTPServer((self.host, 0), _handler_class(), int(verbose))
        # Handler threads die with the server: one that a client leaves hanging must not
        # hold up server_close() (each read already times out after a few seconds).
        self._httpd.daemon_threads = True
        self._httpd.sparkdl_guard = _Guard(self.secret)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sparkdl-rendezvous", daemon=True
        )
        self._thread.start()
        logger.info("Horovod rendezvous server listening on %s:%d", self.host, self.port)

    def __repr__(self) -> str:
        return f"RendezvousService(host={self.host!r}, port={self.port})"

    @property
    def plan(self) -> list[RankSlot] | None:
        """The rank plan posted by the barrier tasks, once it has arrived."""
        return self._httpd.sparkdl_guard.plan

    def scope_items(self, scope: str) -> dict[str, bytes]:
        """Return a copy of what ranks have PUT under ``scope`` (progress reports, say)."""
        with self._httpd.cache_lock:
            return dict(self._httpd.cache.get(scope, {}))

    def take_scope_items(self, scope: str) -> dict[str, bytes]:
        """Remove and return what ranks have PUT under ``scope`` (rank output, once printed)."""
        with self._httpd.cache_lock:
            return self._httpd.cache.pop(scope, {})

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


def post_plan(
    *,
    addr: str,
    port: int,
    secret: bytes,
    partition: int,
    slots: list[RankSlot],
    timeout_s: float,
) -> None:
    """Send the rank plan to the driver's rendezvous server (every barrier task does).

    The first plan initialises the rendezvous; each task's own post also registers the address
    it connects from, the only addresses then allowed to use Horovod's Gloo scopes.

    Examples
    --------
    >>> post_plan(addr="127.0.0.1", port=1, secret=b"k", partition=0, slots=[],
    ...           timeout_s=1)  # doctest: +SKIP
    """
    body = json.dumps([dataclasses.asdict(s) for s in slots]).encode()
    path = f"/{_PLAN_SCOPE}/task-{partition}"
    try:
        signed_put(addr=addr, port=port, path=path, body=body, secret=secret, timeout_s=timeout_s)
    except OSError as exc:
        raise InfraError(
            f"cannot post the rank plan to the Horovod rendezvous server on the driver at "
            f"{addr}:{port}: {exc}. Executors must be able to open connections to "
            "spark.driver.host; check firewalls or set spark.driver.host to a reachable address."
        ) from exc
