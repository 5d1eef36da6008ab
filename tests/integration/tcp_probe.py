"""Inside a network namespace: the speed of one TCP stream over its loopback, and whether a port
of the host's loopback can be reached. Prints one JSON line.

    python tests/integration/tcp_probe.py --megabytes 64 --host-port 7077
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

CHUNK = 1 << 20


def stream_gbit_s(megabytes: int) -> float:
    """Send ``megabytes`` MiB from a client to a server over 127.0.0.1; the receiver's rate."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: dict[str, float] = {}

    def receive() -> None:
        conn, _ = server.accept()
        n, first = 0, None
        with conn:
            while chunk := conn.recv(CHUNK):
                first = first or time.perf_counter()
                n += len(chunk)
        got["bytes"], got["seconds"] = n, time.perf_counter() - (first or time.perf_counter())

    thread = threading.Thread(target=receive)
    thread.start()
    payload = b"\0" * CHUNK
    with socket.create_connection(("127.0.0.1", port)) as client:
        for _ in range(megabytes):
            client.sendall(payload)
    thread.join()
    server.close()
    return got["bytes"] * 8 / got["seconds"] / 1e9


def reachable(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` as seen from here."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--host-port", type=int, default=0)
    args = parser.parse_args()
    out = {"gbit_s": stream_gbit_s(args.megabytes)}
    if args.host_port:
        out["host_port_reachable"] = reachable(args.host_port)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
