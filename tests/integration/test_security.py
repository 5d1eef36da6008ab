"""Garbage on every port does not end a job (issue 13, part 1), on real local[2] Spark.

An attacker thread on 127.0.0.1, without any secret, throws what the issue saw at the barrier
engine's port and at the rendezvous server while real runs go on; the runs must end with the
results they have without the attacker, and nothing the attacker sent may be run or reported.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparkdl.baselines import engine as engine_mod
from sparkdl.baselines.kmeans import run_kmeans
from sparkdl.config import LaunchConfig
from sparkdl.config.baselines import KMeansConfig
from sparkdl.launch import BarrierLauncher, LaunchError
from sparkdl.launch import barrier as barrier_mod
from sparkdl.launch.rendezvous import RendezvousService
from tests.integration.datasets import generate_and_prepare

pytestmark = pytest.mark.integration


class _Touch:
    """Unpickling this creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@contextlib.contextmanager
def _attacking(attack: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``attack(stop)`` on a thread until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=attack, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)


def _tcp_attacks(addr: tuple[str, int], marker: Path, held: list[socket.socket]) -> None:
    """What the issue threw at the engine: a pickle, connect-and-close, garbage, a huge
    length header, and a connection that stays silent (kept open in ``held``)."""
    bomb = pickle.dumps(("no-token", _Touch(marker)))
    for data in (
        struct.pack("!Q", len(bomb)) + bomb,
        b"",
        os.urandom(300),
        struct.pack("!Q", 1 << 62) + b"\x00" * 100,
    ):
        with contextlib.suppress(OSError), socket.create_connection(addr, timeout=2) as sock:
            sock.sendall(data)
    with contextlib.suppress(OSError):
        held.append(socket.create_connection(addr, timeout=2))


@pytest.fixture(scope="module")
def blobs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_and_prepare(
        spark,
        tmp_path_factory.mktemp("security-blobs"),
        "generate.rows=1500",
        "generate.clusters=3",
        "prepare.columns.label_values=[0, 1, 2]",
        profiles=("local.yaml", "blobs.yaml"),
    )


def test_kmeans_on_the_barrier_engine_shrugs_off_an_attacker(
    spark: Any,
    blobs: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def kmeans(out: str) -> Any:
        cfg = KMeansConfig(
            dataset=blobs,
            output=str(tmp_path / out),
            k=3,
            max_iter=10,
            partitions=2,
            engine="barrier",
        )
        return run_kmeans(spark, cfg=cfg)

    clean = kmeans("clean")
    marker = tmp_path / "attacker-ran-code"
    held: list[socket.socket] = []
    attacked_ports: list[int] = []
    accept = engine_mod.BarrierEngine._accept

    def accept_under_attack(self: Any, secret: bytes) -> None:
        # The attack lands in the listener's queue before the tasks (still starting) connect.
        address = self._server.getsockname()[:2]  # the engine's listening socket
        attacked_ports.append(address[1])
        _tcp_attacks(address, marker, held)
        accept(self, secret)

    monkeypatch.setattr(engine_mod.BarrierEngine, "_accept", accept_under_attack)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="sparkdl"):
        attacked = kmeans("attacked")
    elapsed = time.monotonic() - started
    for sock in held:
        sock.close()
    assert attacked_ports, "the attack never ran"
    assert not marker.exists()
    np.testing.assert_array_equal(attacked.centers, clean.centers)
    assert attacked.costs == clean.costs
    dropped = [r for r in caplog.records if "dropped a connection from 127.0.0.1" in r.getMessage()]
    assert len(dropped) >= 4, caplog.text
    assert not any("engine attempt" in r.getMessage() for r in caplog.records), caplog.text
    assert elapsed < 60


def _report_and_beat(beats: int, stall_rank: int, stall_after: int) -> dict[str, int]:
    """Rank function: heartbeats every 0.5 s (rank 0 also a progress report each time); rank
    ``stall_rank`` goes silent after ``stall_after`` beats and sleeps."""
    from sparkdl.launch.watch import HEARTBEAT_SCOPE, REPORT_SCOPE, send

    rank = int(os.environ["HOROVOD_RANK"])
    addr = os.environ["HOROVOD_GLOO_RENDEZVOUS_ADDR"]
    port = int(os.environ["HOROVOD_GLOO_RENDEZVOUS_PORT"])
    for beat in range(beats):
        if rank == stall_rank and beat == stall_after:
            time.sleep(60)
        send(addr, port, HEARTBEAT_SCOPE, f"rank-{rank}", {"steps": beat})
        if rank == 0:
            send(addr, port, REPORT_SCOPE, f"epoch-{beat:05d}", {"epoch": beat, "by": "rank 0"})
        time.sleep(0.5)
    return {"rank": rank, "beats": beats}


def _http_attacks(port_of: Callable[[], int | None], stop: threading.Event) -> None:
    """Forged progress, heartbeats for both ranks and a plan, plus raw garbage, until ``stop``."""
    forged_plan = json.dumps(
        [
            {
                "partition": 0,
                "hostname": "127.0.0.1",
                "rank": 0,
                "local_rank": 0,
                "cross_rank": 0,
                "size": 1,
                "local_size": 1,
                "cross_size": 1,
            }
        ]
    ).encode()
    i = 0
    while not stop.is_set():
        port = port_of()
        if port is None:
            time.sleep(0.02)
            continue
        i += 1
        puts = [
            (f"/sparkdl-progress/epoch-{42 + i:05d}", b'{"epoch": 42, "note": "INJECTED"}'),
            ("/sparkdl-heartbeat/rank-1", json.dumps({"steps": 1000 + i}).encode()),
            ("/sparkdl-heartbeat/rank-0", b'{"steps": 0}'),
            ("/sparkdl-plan/plan", forged_plan),
            ("/sparkdl-plan/task-0", forged_plan),
        ]
        for path, body in puts:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("PUT", path, body=body)
                conn.getresponse().read()
                conn.close()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2) as s:
            s.sendall(os.urandom(200))
        stop.wait(0.2)


def _spoof_heartbeats(port_of: Callable[[], int | None], stop: threading.Event) -> None:
    """Keep rank 1 looking alive: a new heartbeat value for it every 0.1 s, until ``stop``."""
    i = 0
    while not stop.wait(0.1):
        port = port_of()
        if port is None:
            continue
        i += 1
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("PUT", "/sparkdl-heartbeat/rank-1", body=json.dumps({"steps": i}))
            conn.getresponse().read()
            conn.close()


def _port(services: list[RendezvousService]) -> int | None:
    return services[-1].port if services else None


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> list[RendezvousService]:
    """Every launch's real rendezvous server, recorded as the launcher starts it."""
    started: list[RendezvousService] = []

    class Recorded(RendezvousService):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            started.append(self)

    monkeypatch.setattr(barrier_mod, "RendezvousService", Recorded)
    return started


def test_a_launch_sees_only_its_ranks_reports_under_attack(
    spark: Any, services: list[RendezvousService]
) -> None:
    reports: list[tuple[str, Any]] = []
    launcher = BarrierLauncher(spark, config=LaunchConfig(num_workers=2))
    with _attacking(lambda stop: _http_attacks(lambda: _port(services), stop)):
        result = launcher.run(
            _report_and_beat,
            6,
            -1,
            0,
            on_report=lambda k, v: reports.append((k, v)),
            heartbeat_timeout_s=10,
        )
    assert result == {"rank": 0, "beats": 6}
    assert reports == [(f"epoch-{e:05d}", {"epoch": e, "by": "rank 0"}) for e in range(6)]
    (service,) = services
    assert service.plan is not None and [s.rank for s in service.plan] == [0, 1]
    assert "INJECTED" not in json.dumps(
        {k: v.decode() for k, v in service.scope_items("sparkdl-progress").items()}
    )


def test_spoofed_heartbeats_neither_hide_a_stalled_rank_nor_blame_a_healthy_one(
    spark: Any, services: list[RendezvousService]
) -> None:
    launcher = BarrierLauncher(spark, config=LaunchConfig(num_workers=2))
    started = time.monotonic()
    with (
        _attacking(lambda stop: _spoof_heartbeats(lambda: _port(services), stop)),
        pytest.raises(LaunchError, match=r"stalled: rank 1 silent for \d+ s") as info,
    ):
        launcher.run(_report_and_beat, 24, 1, 2, heartbeat_timeout_s=4)
    assert "rank 0" not in str(info.value)
    assert time.monotonic() - started < 45
