"""Rank functions of ``sparkdl bench train``: Horovod start-up, all-reduce and TCP between ranks.

They run in the ranks' child processes (TensorFlow and Horovod are imported there), so the
all-reduce and the TCP reference it is compared with are measured by the same two processes,
one right after the other.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from typing import Any

_MB = 1 << 20


def init_probe() -> float:
    """Rank function: initialise Horovod and return the wall-clock time it was ready."""
    import horovod.tensorflow as hvd

    hvd.init()
    ready = time.time()
    hvd.shutdown()
    return ready


def _recv_exactly(conn: socket.socket, nbytes: int, view: bytearray) -> None:
    left = nbytes
    while left:
        got = conn.recv_into(view, min(len(view), left))
        if not got:
            raise ConnectionError(f"peer closed the bench socket with {left} bytes to come")
        left -= got


def _connect_pair(hvd: Any) -> tuple[socket.socket, socket.socket]:
    """Two TCP connections between rank 0 and rank 1 over 127.0.0.1: ``(to_peer, from_peer)``."""
    server = socket.create_server(("127.0.0.1", 0)) if hvd.rank() == 0 else None
    port = hvd.broadcast_object(server.getsockname()[1] if server else 0, root_rank=0)
    if server is not None:
        first, _ = server.accept()
        second, _ = server.accept()
        server.close()
        return first, second  # rank 0 sends on the first, rank 1 on the second
    first = socket.create_connection(("127.0.0.1", port))
    second = socket.create_connection(("127.0.0.1", port))
    return second, first


def tcp_probe_pair(hvd: Any, megabytes: int, repeats: int) -> dict[str, float]:
    """Bytes/s between ranks 0 and 1: one stream (timed until the receiver holds every byte),
    and each direction while both directions send at once (what a 2-rank ring's links carry).
    """
    nbytes = megabytes * _MB
    payload = bytes(nbytes)
    view = bytearray(4 * _MB)
    to_peer, from_peer = _connect_pair(hvd)
    one, duplex = [], []
    with to_peer, from_peer:
        for _ in range(repeats + 1):
            # one stream: rank 1 sends, rank 0 receives and acknowledges with one byte
            hvd.broadcast_object(0, root_rank=0)  # both ranks start together
            start = time.perf_counter()
            if hvd.rank() == 1:
                to_peer.sendall(payload)
                _recv_exactly(from_peer, 1, view)
                one.append(time.perf_counter() - start)
            else:
                _recv_exactly(from_peer, nbytes, view)
                to_peer.sendall(b"\1")
            # both directions at once
            hvd.broadcast_object(0, root_rank=0)
            start = time.perf_counter()
            sender = threading.Thread(target=to_peer.sendall, args=(payload,))
            sender.start()
            _recv_exactly(from_peer, nbytes, view)
            sender.join()
            duplex.append(time.perf_counter() - start)
    one_s = hvd.broadcast_object(statistics.median(one[1:]) if one else 0.0, root_rank=1)
    return {"one_stream": nbytes / one_s, "duplex": nbytes / statistics.median(duplex[1:])}


def allreduce_probe(megabytes: int, repeats: int) -> dict[str, float]:
    """Rank function (2 ranks on one host): median seconds of a Horovod all-reduce of
    ``megabytes`` of float32, and the TCP bandwidths of :func:`tcp_probe_pair` between the same
    two processes."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    if hvd.size() != 2 or hvd.local_size() != 2:
        raise RuntimeError("the all-reduce probe runs on exactly 2 ranks on one host")
    tcp = tcp_probe_pair(hvd, megabytes, repeats)
    tensor = tf.ones([megabytes * _MB // 4], tf.float32)
    for i in range(2):
        hvd.allreduce(tensor, op=hvd.Sum, name=f"warm{i}")
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        hvd.allreduce(tensor, op=hvd.Sum, name=f"bench{i}").numpy()
        times.append(time.perf_counter() - start)
    hvd.shutdown()
    return {"seconds": statistics.median(times), **tcp}
