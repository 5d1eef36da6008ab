"""The barrier engine's wire: a mutual HMAC handshake, then authenticated messages.

A task proves it holds the engine's secret before the driver reads a single framed message,
and the driver proves it back before the task unpickles anything. Every handshake message is
fixed-length raw bytes (nonces, HMAC-SHA256 digests, the partition id as an unsigned 64-bit
integer), so nothing is deserialised until both sides are authenticated:

1. driver -> task: a 32-byte random nonce ``Ns``;
2. task -> driver: ``HMAC(secret, "client" | Ns | Nc | part)``, its own nonce ``Nc``, ``part``;
3. driver -> task: ``HMAC(secret, "server" | Nc | Ns | part)``.

The labels differ, so a proof cannot be reflected back to its sender; fresh nonces on both sides
make a recorded handshake useless on another connection.

Both sides then hold a :class:`Channel` keyed by ``HMAC(secret, "session" | Ns | Nc | part)``.
Every message carries ``HMAC(key, direction | sequence number | payload)``, checked before the
payload is returned: bytes injected into an authenticated connection, a message replayed,
reordered or sent back to its sender are refused before anything unpickles them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import socket
import struct
import threading
from typing import Any

logger = logging.getLogger(__name__)

SECRET_BYTES = 32
_NONCE = 32
_MAC = hashlib.sha256().digest_size
_PART = struct.Struct("!Q")
_HELLO = _MAC + _NONCE + _PART.size
_CLIENT = b"sparkdl-engine client\x00"
_SERVER = b"sparkdl-engine server\x00"
_SESSION = b"sparkdl-engine session\x00"
_TO_TASK = b"driver->task\x00"
_TO_DRIVER = b"task->driver\x00"
_SEQ = struct.Struct("!Q")
_HEADER = struct.Struct("!Q")
# Handshakes in flight at once; more connections than this are dropped unread.
_MAX_PENDING_HANDSHAKES = 32


class HandshakeError(ConnectionError):
    """A peer did not prove the engine secret, or sent something other than a handshake."""


def new_secret() -> bytes:
    """Return a fresh random engine secret.

    Examples
    --------
    >>> len(new_secret())
    32
    """
    return secrets.token_bytes(SECRET_BYTES)


def _mac(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.new(secret, label + b"".join(parts), hashlib.sha256).digest()


class Channel:
    """One authenticated connection: each message is sent with, and received only after
    checking, its HMAC under the connection's session key and its sequence number.

    Examples
    --------
    >>> a, b = socket.socketpair()
    >>> key = new_secret()
    >>> driver, task = Channel(a, key, send=_TO_TASK, recv=_TO_DRIVER), Channel(
    ...     b, key, send=_TO_DRIVER, recv=_TO_TASK)
    >>> driver.send(b"work"); task.recv()
    b'work'
    >>> a.close(); b.close()
    """

    def __init__(self, sock: socket.socket, key: bytes, *, send: bytes, recv: bytes) -> None:
        self.sock = sock
        self._key, self._send_label, self._recv_label = key, send, recv
        self._sent = self._received = 0

    def _tag(self, label: bytes, seq: int, payload: bytes) -> bytes:
        return hmac.new(self._key, label + _SEQ.pack(seq) + payload, hashlib.sha256).digest()

    def send(self, payload: bytes) -> None:
        """Send one message (an empty one tells a task to finish)."""
        tag = self._tag(self._send_label, self._sent, payload)
        self._sent += 1
        self.sock.sendall(_HEADER.pack(len(payload)) + tag + payload)

    def recv(self) -> bytes:
        """Receive one message and return it once its MAC holds.

        Raises
        ------
        HandshakeError
            When the MAC does not hold (injected, altered, replayed or reflected bytes).
        """
        size = _HEADER.unpack(recv_exact(self.sock, _HEADER.size))[0]
        tag = recv_exact(self.sock, _MAC)
        payload = recv_exact(self.sock, size)
        if not hmac.compare_digest(tag, self._tag(self._recv_label, self._received, payload)):
            raise HandshakeError(
                f"message {self._received} on an authenticated engine connection failed its "
                "MAC: dropped unread (bytes injected or altered on the way)"
            )
        self._received += 1
        return payload

    def settimeout(self, seconds: float | None) -> None:
        """The socket's timeout."""
        self.sock.settimeout(seconds)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def _session_key(secret: bytes, server_nonce: bytes, client_nonce: bytes, raw_part: bytes) -> bytes:
    return _mac(secret, _SESSION, server_nonce, client_nonce, raw_part)


def serve_handshake(conn: socket.socket, *, secret: bytes, partitions: int) -> tuple[int, Channel]:
    """Driver side: authenticate a task; return its partition id and the connection's channel.

    Raises
    ------
    HandshakeError
        When the peer's proof is wrong or its partition id is out of range.
    ConnectionError, OSError
        When the peer closes or times out (the caller sets the socket's timeout).

    Examples
    --------
    >>> import threading
    >>> a, b = socket.socketpair()
    >>> key = new_secret()
    >>> t = threading.Thread(target=join_handshake, args=(b,), kwargs={"secret": key, "part": 1})
    >>> t.start()
    >>> serve_handshake(a, secret=key, partitions=2)[0]
    1
    >>> t.join(); a.close(); b.close()
    """
    server_nonce = secrets.token_bytes(_NONCE)
    conn.sendall(server_nonce)
    hello = recv_exact(conn, _HELLO)
    proof, client_nonce, raw_part = hello[:_MAC], hello[_MAC : _MAC + _NONCE], hello[-_PART.size :]
    if not hmac.compare_digest(proof, _mac(secret, _CLIENT, server_nonce, client_nonce, raw_part)):
        raise HandshakeError("the peer did not prove the engine secret")
    part = _PART.unpack(raw_part)[0]
    if part >= partitions:
        raise HandshakeError(f"partition id {part} is outside 0..{partitions - 1}")
    conn.sendall(_mac(secret, _SERVER, client_nonce, server_nonce, raw_part))
    key = _session_key(secret, server_nonce, client_nonce, raw_part)
    return int(part), Channel(conn, key, send=_TO_TASK, recv=_TO_DRIVER)


def join_handshake(sock: socket.socket, *, secret: bytes, part: int) -> Channel:
    """Task side: prove the secret for partition ``part``, check the driver's proof, and
    return the connection's channel.

    Raises
    ------
    HandshakeError
        When the server does not prove the same secret (it is not this engine's driver).

    Examples
    --------
    >>> join_handshake(sock, secret=secret, part=0)  # doctest: +SKIP
    """
    server_nonce = recv_exact(sock, _NONCE)
    client_nonce = secrets.token_bytes(_NONCE)
    raw_part = _PART.pack(part)
    proof = _mac(secret, _CLIENT, server_nonce, client_nonce, raw_part)
    sock.sendall(proof + client_nonce + raw_part)
    answer = recv_exact(sock, _MAC)
    if not hmac.compare_digest(answer, _mac(secret, _SERVER, client_nonce, server_nonce, raw_part)):
        raise HandshakeError(
            "the server at the engine's address did not prove the engine secret: it is not this "
            "job's driver; the task refuses to talk to it"
        )
    key = _session_key(secret, server_nonce, client_nonce, raw_part)
    return Channel(sock, key, send=_TO_DRIVER, recv=_TO_TASK)


class HandshakePool:
    """Run each accepted connection's handshake on a short-lived thread of its own.

    A silent or slow peer then holds up only its own thread (for at most ``timeout_s``), never
    the accept loop or the other tasks' handshakes. Failures are logged at WARNING with the
    peer's address, and the connection is closed unread.

    Examples
    --------
    >>> pool = HandshakePool(partitions=2, timeout_s=5.0)
    >>> pool.take()
    []
    >>> pool.stop()
    """

    def __init__(self, *, partitions: int, timeout_s: float) -> None:
        self.partitions = partitions
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._done: list[tuple[int, Channel, Any]] = []
        self._open = True
        self._slots = threading.BoundedSemaphore(_MAX_PENDING_HANDSHAKES)

    def start(self, conn: socket.socket, peer: Any, secret: bytes) -> None:
        """Authenticate ``conn`` in the background (dropped at once when too many are pending)."""
        if not self._slots.acquire(blocking=False):
            logger.warning(
                "engine: dropped a connection from %s: %d handshakes already pending",
                describe_peer(peer),
                _MAX_PENDING_HANDSHAKES,
            )
            conn.close()
            return
        threading.Thread(
            target=self._run,
            args=(conn, peer, secret),
            name="sparkdl-engine-handshake",
            daemon=True,
        ).start()

    def _run(self, conn: socket.socket, peer: Any, secret: bytes) -> None:
        try:
            conn.settimeout(self.timeout_s)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            part, channel = serve_handshake(conn, secret=secret, partitions=self.partitions)
        except (OSError, ConnectionError) as exc:
            reason = "no handshake in time" if isinstance(exc, TimeoutError) else str(exc)
            logger.warning("engine: dropped a connection from %s: %s", describe_peer(peer), reason)
            conn.close()
            return
        finally:
            self._slots.release()
        with self._lock:
            if self._open:
                self._done.append((part, channel, peer))
                return
        conn.close()

    def take(self) -> list[tuple[int, Channel, Any]]:
        """The connections authenticated since the last call, as channels."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def stop(self) -> None:
        """Close connections authenticated too late to be used, and any that arrive later."""
        with self._lock:
            self._open = False
            done, self._done = self._done, []
        for _, conn, _ in done:
            conn.close()


def describe_peer(peer: Any) -> str:
    """A peer address as ``host:port`` for log lines.

    Examples
    --------
    >>> describe_peer(("127.0.0.1", 5000))
    '127.0.0.1:5000'
    """
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; raise ConnectionError when the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)
