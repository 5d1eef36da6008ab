"""Listeners refuse unauthenticated peers before reading anything from them (issue 13, part 1).

The barrier engine's handshake and the rendezvous server's checks run here on real sockets
bound to 127.0.0.1, with real clients that do not hold the secret.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import pickle
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sparkdl.baselines import handshake as wire
from sparkdl.launch import spare


class _Touch:
    """Unpickling this creates ``path``: proof that a listener deserialised it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _listener() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    return server


def _closed_by_server(sock: socket.socket, *, within_s: float) -> bool:
    """Wait until the server closes ``sock``; what it sent first (a nonce) is discarded."""
    sock.settimeout(within_s)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _taken(pool: wire.HandshakePool, *, within_s: float) -> list[tuple[int, Any, Any]]:
    """What the pool authenticated, waiting up to ``within_s`` for the first one."""
    deadline = time.monotonic() + within_s
    got = pool.take()
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
        got = pool.take()
    return got


def test_handshake_refuses_a_pickle_without_unpickling_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(("token", _Touch(marker)))
    with _listener() as server:
        pool = wire.HandshakePool(partitions=2, timeout_s=2.0)
        attacker = socket.create_connection(server.getsockname()[:2])
        conn, peer = server.accept()
        with caplog.at_level(logging.WARNING, logger="sparkdl.baselines.handshake"):
            pool.start(conn, peer, wire.new_secret())
            # The old engine's first message: a length header, then a pickle.
            attacker.sendall(struct.pack("!Q", len(payload)) + payload)
            assert _closed_by_server(attacker, within_s=4.0)
            attacker.close()
            time.sleep(0.2)
        assert pool.take() == []
        pool.stop()
    assert not marker.exists()
    assert any(
        "dropped a connection from 127.0.0.1" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    ), caplog.text


def test_connect_and_close_and_a_silent_peer_are_dropped_without_holding_up_a_real_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = wire.new_secret()
    with _listener() as server:
        pool = wire.HandshakePool(partitions=2, timeout_s=1.0)
        addr = server.getsockname()[:2]
        with caplog.at_level(logging.WARNING, logger="sparkdl.baselines.handshake"):
            socket.create_connection(addr).close()
            pool.start(*server.accept(), secret)
            silent = socket.create_connection(addr)
            started = time.monotonic()
            pool.start(*server.accept(), secret)
            # A real task arriving after the silent peer is authenticated long before the
            # silent one's handshake times out.
            task = socket.create_connection(addr)
            joined = threading.Thread(
                target=wire.join_handshake, args=(task,), kwargs={"secret": secret, "part": 1}
            )
            joined.start()
            pool.start(*server.accept(), secret)
            joined.join(timeout=5)
            got = _taken(pool, within_s=0.5)
            assert [part for part, _, _ in got] == [1]
            assert time.monotonic() - started < 0.9
            assert _closed_by_server(silent, within_s=3.0)
            dropped_after = time.monotonic() - started
        silent.close()
        task.close()
        got[0][1].close()
        pool.stop()
    assert 0.9 <= dropped_after < 2.5
    messages = [r.getMessage() for r in caplog.records]
    assert any("connection closed" in m for m in messages), messages
    assert any("no handshake in time" in m for m in messages), messages
    assert not any(secret.hex() in m for m in messages)


def test_garbage_and_a_wrong_secret_are_refused_and_a_task_refuses_a_fake_driver() -> None:
    secret = wire.new_secret()
    with _listener() as server:
        pool = wire.HandshakePool(partitions=2, timeout_s=2.0)
        garbage = socket.create_connection(server.getsockname()[:2])
        pool.start(*server.accept(), secret)
        garbage.sendall(b"\xff" * 200)
        assert _closed_by_server(garbage, within_s=3.0)
        impostor = socket.create_connection(server.getsockname()[:2])
        pool.start(*server.accept(), secret)
        with pytest.raises(ConnectionError):
            wire.join_handshake(impostor, secret=wire.new_secret(), part=0)
        time.sleep(0.2)
        assert pool.take() == []
        pool.stop()
        garbage.close()
        impostor.close()
    # A fake driver: the task's handshake fails before it reads any message.
    with _listener() as fake:
        task = socket.create_connection(fake.getsockname()[:2])
        conn, _ = fake.accept()

        def fake_driver() -> None:
            conn.sendall(b"\x00" * 32)
            wire.recv_exact(conn, 72)
            conn.sendall(b"\x01" * 32)

        thread = threading.Thread(target=fake_driver)
        thread.start()
        with pytest.raises(wire.HandshakeError, match="did not prove the engine secret"):
            wire.join_handshake(task, secret=secret, part=0)
        thread.join()
        conn.close()
        task.close()


def test_a_partition_id_out_of_range_is_refused() -> None:
    secret = wire.new_secret()
    with _listener() as server:
        pool = wire.HandshakePool(partitions=2, timeout_s=2.0)
        task = socket.create_connection(server.getsockname()[:2])
        pool.start(*server.accept(), secret)
        with pytest.raises(ConnectionError):
            wire.join_handshake(task, secret=secret, part=7)
        time.sleep(0.2)
        assert pool.take() == []
        pool.stop()
        task.close()


def test_a_spare_matches_across_launches_whatever_the_launch_secret() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0", "HOROVOD_RANK": "1"}
    first = spare.spare_key({**env, "SPARKDL_RENDEZVOUS_SECRET": "aa" * 32})
    second = spare.spare_key({**env, "SPARKDL_RENDEZVOUS_SECRET": "bb" * 32})
    assert first == second
    assert "SPARKDL_RENDEZVOUS_SECRET" not in first


# The rendezvous server: sparkdl's scopes need the launch secret, Gloo's the tasks' address.


@pytest.fixture
def rdv() -> Any:
    from sparkdl.launch.rendezvous import RendezvousService

    with RendezvousService(host="127.0.0.1") as service:
        yield service


def _request(
    rdv: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> int:
    conn = http.client.HTTPConnection(rdv.host, rdv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def _signed(secret: bytes, method: str, path: str, body: bytes) -> dict[str, str]:
    from sparkdl.launch.rendezvous import AUTH_HEADER, SEQ_HEADER, next_seq, sign

    seq = next_seq()
    return {
        SEQ_HEADER: str(seq),
        AUTH_HEADER: sign(secret, method=method, path=path, seq=seq, body=body),
    }


def _plan_body() -> bytes:
    from sparkdl.launch.plan import plan_ranks

    slots = plan_ranks(["127.0.0.1:4000"])
    return json.dumps([dataclasses.asdict(s) for s in slots]).encode()


_FORGED = [
    ("/sparkdl-progress/epoch-00042", b'{"epoch": 42, "note": "INJECTED_BY_LOCAL_PROCESS"}'),
    ("/sparkdl-heartbeat/rank-1", b'{"steps": 12345}'),
    ("/sparkdl-plan/plan", _plan_body()),
    ("/sparkdl-plan/task-0", _plan_body()),
]


@pytest.mark.parametrize(("path", "body"), _FORGED)
def test_unauthenticated_puts_to_sparkdl_scopes_get_403_and_change_nothing(
    rdv: Any, path: str, body: bytes
) -> None:
    assert _request(rdv, "PUT", path, body) == 403
    from sparkdl.launch.rendezvous import AUTH_HEADER, SEQ_HEADER

    wrong = _signed(b"not the launch secret", "PUT", path, body)
    assert _request(rdv, "PUT", path, body, wrong) == 403
    assert _request(rdv, "PUT", path, body, {SEQ_HEADER: "1", AUTH_HEADER: "0" * 64}) == 403
    scope = path.split("/")[1]
    assert rdv.scope_items(scope) == {}
    assert rdv.plan is None


def test_signed_reports_are_stored_and_a_replay_is_refused(rdv: Any) -> None:
    from sparkdl.launch.watch import REPORT_SCOPE, send

    send(rdv.host, rdv.port, REPORT_SCOPE, "epoch-00000", {"loss": 0.5}, secret=rdv.secret)
    assert json.loads(rdv.scope_items(REPORT_SCOPE)["epoch-00000"]) == {"loss": 0.5}
    path, body = "/sparkdl-heartbeat/rank-0", b'{"steps": 7}'
    headers = _signed(rdv.secret, "PUT", path, body)
    assert _request(rdv, "PUT", path, body, headers) == 200
    assert _request(rdv, "PUT", path, b'{"steps": 8}', headers) == 403  # body changed
    assert _request(rdv, "PUT", path, body, headers) == 403  # the same request again
    assert rdv.scope_items("sparkdl-heartbeat") == {"rank-0": body}


def test_send_without_a_secret_names_the_variable(
    rdv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkdl.launch.watch import REPORT_SCOPE, send

    monkeypatch.delenv("SPARKDL_RENDEZVOUS_SECRET", raising=False)
    with pytest.raises(PermissionError, match="SPARKDL_RENDEZVOUS_SECRET is unset"):
        send(rdv.host, rdv.port, REPORT_SCOPE, "epoch-00000", {})
    assert rdv.scope_items(REPORT_SCOPE) == {}


def test_gloo_keys_wait_for_the_plan_come_from_its_tasks_and_are_set_once(rdv: Any) -> None:
    from sparkdl.launch.plan import plan_ranks
    from sparkdl.launch.rendezvous import post_plan

    assert _request(rdv, "PUT", "/global/0", b"addr-of-0") == 403
    assert _request(rdv, "GET", "/global/0") == 403
    assert rdv.scope_items("global") == {}
    slots = plan_ranks(["127.0.0.1:4000", "127.0.0.1:4001"])
    post_plan(
        addr=rdv.host, port=rdv.port, secret=rdv.secret, partition=0, slots=slots, timeout_s=5
    )
    assert rdv.plan == slots
    assert _request(rdv, "PUT", "/global/0", b"addr-of-0") == 200
    assert _request(rdv, "PUT", "/global/0", b"addr-of-0") == 200  # Horovod's retry
    assert _request(rdv, "PUT", "/global/0", b"attacker") == 409
    assert rdv.scope_items("global") == {"0": b"addr-of-0"}
    conn = http.client.HTTPConnection(rdv.host, rdv.port, timeout=10)
    conn.request("GET", "/global/0")
    assert conn.getresponse().read() == b"addr-of-0"
    conn.close()
    # A second, different plan (even a signed one) does not re-initialise the rendezvous.
    other = plan_ranks(["127.0.0.1:4000"])
    with pytest.raises(RuntimeError, match="409"):
        post_plan(
            addr=rdv.host, port=rdv.port, secret=rdv.secret, partition=1, slots=other, timeout_s=5
        )
    assert rdv.plan == slots
    assert rdv.scope_items("global") == {"0": b"addr-of-0"}


def test_gloo_scopes_refuse_an_address_that_sent_no_signed_plan() -> None:
    from sparkdl.launch.plan import plan_ranks
    from sparkdl.launch.rendezvous import _Guard

    guard = _Guard(b"secret")
    assert not guard.gloo_peer("127.0.0.1")  # no plan yet
    guard.plan = plan_ranks(["127.0.0.1:4000"])
    guard.peers.add("127.0.0.1")
    assert guard.gloo_peer("127.0.0.1")
    # 192.0.2.0/24 is reserved for documentation: a value here, never contacted.
    assert not guard.gloo_peer("192.0.2.7")


def test_oversized_bodies_head_and_malformed_paths_are_refused_unread(rdv: Any) -> None:
    conn = http.client.HTTPConnection(rdv.host, rdv.port, timeout=10)
    conn.putrequest("PUT", "/sparkdl-progress/x")
    conn.putheader("Content-Length", str(1 << 40))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert _request(rdv, "HEAD", "/") == 405
    assert _request(rdv, "PUT", "/a/b/c", b"x") == 400
    assert _request(rdv, "GET", "/nothing") == 400
    assert rdv.scope_items("sparkdl-progress") == {}


def test_the_engine_connect_wait_comes_from_a_spark_conf_and_bad_values_are_refused() -> None:
    from sparkdl.baselines.engine import CONNECT_TIMEOUT_CONF, _connect_timeout
    from sparkdl.errors import BadInputError

    assert _connect_timeout({}, None) == 600.0
    assert _connect_timeout({CONNECT_TIMEOUT_CONF: "45"}, None) == 45.0
    assert _connect_timeout({CONNECT_TIMEOUT_CONF: "45"}, 3.0) == 3.0
    for bad in ("-1", "soon"):
        with pytest.raises(BadInputError, match=r"sparkdl.engine.connectTimeout=.* set it to"):
            _connect_timeout({CONNECT_TIMEOUT_CONF: bad}, None)


def _pair(secret: bytes) -> tuple[wire.Channel, wire.Channel]:
    """A driver and a task channel over one socket pair, after a real handshake."""
    a, b = socket.socketpair()
    joined: list[wire.Channel] = []
    t = threading.Thread(
        target=lambda: joined.append(wire.join_handshake(b, secret=secret, part=0))
    )
    t.start()
    _, driver = wire.serve_handshake(a, secret=secret, partitions=1)
    t.join(timeout=5)
    return driver, joined[0]


def test_bytes_injected_into_an_authenticated_connection_are_refused_before_unpickling(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "unpickled"
    driver, task = _pair(wire.new_secret())
    driver.send(b"work")
    assert task.recv() == b"work"
    # an on-path attacker writes a well-framed pickle with a made-up MAC into the stream
    payload = pickle.dumps(("ok", _Touch(marker)))
    task.sock.sendall(struct.pack("!Q", len(payload)) + b"\x00" * 32 + payload)
    with pytest.raises(wire.HandshakeError, match="failed its MAC"):
        pickle.loads(driver.recv())
    assert not marker.exists()
    driver.close()
    task.close()


def _frame(channel: wire.Channel, size: int) -> bytes:
    """The raw frame of a ``size``-byte message waiting on ``channel``'s socket (read, not
    checked): length, MAC, payload."""
    return wire.recv_exact(channel.sock, 8 + 32 + size)


def test_a_replayed_or_reflected_message_is_refused() -> None:
    driver, task = _pair(wire.new_secret())
    driver.send(b"step 1")
    raw = _frame(task, 6)  # captured on the way
    driver.sock.sendall(raw)  # delivered once: fine
    assert task.recv() == b"step 1"
    driver.sock.sendall(raw)  # delivered again: its sequence number is used up
    with pytest.raises(wire.HandshakeError, match="message 1"):
        task.recv()
    # the driver's own message sent back to it: the direction is part of the MAC
    driver.send(b"step 2")
    task.sock.sendall(_frame(task, 6))
    with pytest.raises(wire.HandshakeError, match="failed its MAC"):
        driver.recv()
    driver.close()
    task.close()


def test_two_connections_of_one_engine_have_different_session_keys() -> None:
    secret = wire.new_secret()
    first_driver, first_task = _pair(secret)
    second_driver, second_task = _pair(secret)
    first_driver.send(b"for the first task")
    second_driver.sock.sendall(_frame(first_task, 18))  # moved to the other task's connection
    with pytest.raises(wire.HandshakeError, match="failed its MAC"):
        second_task.recv()
    for c in (first_driver, first_task, second_driver, second_task):
        c.close()
