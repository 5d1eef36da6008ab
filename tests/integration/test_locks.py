"""Output locks on real commands: a second writer into a live output is refused (exit 2) and
names the holder, and the first one finishes with its output intact."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sparkdl.baselines.kmeans import run_kmeans
from sparkdl.baselines.sgd import run_parallel_sgd
from sparkdl.config.baselines import KMeansConfig, SGDConfig
from sparkdl.errors import OutputLockedError
from sparkdl.lock import LOCK_NAME, HadoopStore, LocalStore, OutputLock, current_holder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
COLUMNS = "numeric: [x0, x1, x2, x3, x4, x5, x6, x7]"

# Holds the lock on argv[1] until a line arrives on stdin.
HOLD = """
import sys
from sparkdl.lock import output_lock
with output_lock(sys.argv[1], what=sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sparkdl.cli", "--log-level", "WARNING", *args]


def _run(args: list[str], *, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[Any]:
    """Start another process holding the lock on a folder; yields a function(folder, what)."""
    procs: list[subprocess.Popen[str]] = []

    def hold(folder: Path, what: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder), what],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def raw(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 generated raw rows (CSV) for the prepare tests."""
    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.data.generate import write_generated

    out = tmp_path_factory.mktemp("locks") / "raw"
    cfg = load_config(
        SparkdlConfig,
        files=[REPO / "conf" / "local.yaml"],
        overrides=[f"generate.output={out}", "generate.rows=2000"],
    )
    write_generated(spark, cfg=cfg.generate)
    return out


def _wait_for(predicate: Any, *, timeout: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the first prepare ended (exit {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.02)


def test_second_prepare_refused_while_first_runs(spark: Any, tmp_path: Path, raw: Path) -> None:
    root = tmp_path / "prepared"
    args = _cli(
        "prepare",
        "--config",
        "conf/local.yaml",
        "--set",
        f"prepare.input.path={raw}",
        "--set",
        f"prepare.output={root}",
    )
    first = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        staging = root / "_staging"
        _wait_for(
            lambda: staging.is_dir() and any(staging.iterdir()),
            timeout=300,
            what="staging folder",
            proc=first,
        )
        # Hold the first run inside its work (its JVM keeps going), so the second surely
        # arrives while the first is live: before the lock, the second deleted this staging
        # folder as "left by an interrupted run" and the first then failed with exit 3.
        os.kill(first.pid, signal.SIGSTOP)
        live = sorted(p.name for p in staging.iterdir())
        second = _run(args)
        assert sorted(p.name for p in staging.iterdir()) == live
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert second.returncode == 2, second.stderr[-3000:]
    assert (
        f"prepare.output {root} is locked by another run: user " in second.stderr
        and f"on host {socket.gethostname()}, pid {first.pid}, command 'sparkdl --log-level WARNING prepare"
        in second.stderr
    ), second.stderr[-3000:]
    assert first.returncode == 0, err[-3000:]
    from sparkdl.data.dataset import open_dataset

    ds = open_dataset(spark, str(root))
    assert ds.manifest.rows.input == 2000
    assert sum(ds.rows(s) for s in ds.manifest.splits) == ds.manifest.rows.valid
    assert not (root / LOCK_NAME).exists()
    assert not list(staging.iterdir())  # the first run's staging became its version


def test_train_refused_while_its_output_is_locked(tmp_path: Path) -> None:
    out = tmp_path / "train"
    with OutputLock(out, what="train.output"):
        proc = _run(
            _cli(
                "train",
                "--config",
                "conf/local.yaml",
                "--set",
                f"train.output={out}",
                "--set",
                f"train.dataset={tmp_path / 'prepared'}",
            )
        )
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing else written
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"train.output {out} is locked by another run: user " in proc.stderr
    assert f"pid {os.getpid()}, command " in proc.stderr
    assert f"(lock {out / LOCK_NAME}). Wait for that run to finish" in proc.stderr


def test_pipeline_refused_while_its_run_folder_is_locked(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "nightly"
    with OutputLock(run_dir, what="pipeline run folder"):
        proc = _run(
            _cli(
                "pipeline",
                "--config",
                "conf/local.yaml",
                "--set",
                f"pipeline.root={tmp_path / 'runs'}",
                "--run-id",
                "nightly",
            )
        )
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # no state.json
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"is locked by another run: user {current_holder(what='x').user} on host" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr


def test_pipeline_run_id_outside_root_refused(tmp_path: Path) -> None:
    root = tmp_path / "a" / "runs"
    proc = _run(
        _cli(
            "pipeline",
            "--config",
            "conf/local.yaml",
            "--set",
            f"pipeline.root={root}",
            "--run-id",
            "../x",
        )
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "--run-id '../x' is not a valid run id" in proc.stderr
    assert not (tmp_path / "a" / "x").exists()
    assert not root.exists()


def test_bad_run_date_refused(tmp_path: Path) -> None:
    proc = _run(
        _cli(
            "pipeline",
            "--config",
            "conf/local.yaml",
            "--set",
            f"pipeline.root={tmp_path / 'runs'}",
            "--run-date",
            "2026-13-45",
        )
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "--run-date '2026-13-45' is not a date: month must be in 1..12" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("baseline", ["sgd", "kmeans"])
def test_baseline_refused_while_its_output_is_locked(
    spark: Any, tmp_path: Path, held_elsewhere: Any, baseline: str
) -> None:
    out = tmp_path / baseline
    holder = held_elsewhere(out, f"{baseline}.output")
    missing = str(tmp_path / "no-dataset")
    with pytest.raises(OutputLockedError, match=rf"{baseline}.output {out} .* pid {holder.pid}"):
        if baseline == "sgd":
            run_parallel_sgd(spark, cfg=SGDConfig(dataset=missing, output=str(out)))
        else:
            run_kmeans(spark, cfg=KMeansConfig(dataset=missing, output=str(out)))
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_hadoop_store_locks_through_the_file_system(spark: Any, tmp_path: Path) -> None:
    root = f"file:{tmp_path / 'data'}"
    with OutputLock(root, what="prepare.output", store=HadoopStore(spark)) as lock:
        content = json.loads((tmp_path / "data" / LOCK_NAME).read_text())
        assert content["pid"] == os.getpid() and lock.path == f"{root}/{LOCK_NAME}"
    assert not (tmp_path / "data" / LOCK_NAME).exists()
    # a live lock from another host is refused through Hadoop too; a stale one is taken over
    foreign = replace(current_holder(what="x"), host="node-7.example")
    LocalStore().replace(str(tmp_path / "data" / LOCK_NAME), foreign.to_json())
    with pytest.raises(OutputLockedError, match=r"on host node-7\.example"):
        OutputLock(root, what="prepare.output", store=HadoopStore(spark)).acquire()
    old = replace(foreign, refreshed_unix=time.time() - 3600)
    LocalStore().replace(str(tmp_path / "data" / LOCK_NAME), old.to_json())
    with OutputLock(root, what="prepare.output", store=HadoopStore(spark)):
        content = json.loads((tmp_path / "data" / LOCK_NAME).read_text())
        assert content["host"] == socket.gethostname()


def test_prepare_after_a_killed_run_takes_over_and_cleans_staging(
    spark: Any, tmp_path: Path, raw: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.data.dataset import open_dataset
    from sparkdl.data.prepare import run_prepare

    root = tmp_path / "prepared"
    # A run killed with SIGKILL: its lock (a dead pid on this host) and staging folder remain.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    leftover = root / "_staging" / "20261122T000000-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "part-0.parquet").write_bytes(b"half written")
    (root / LOCK_NAME).write_text(replace(current_holder(what="x"), pid=dead.pid).to_json())
    cfg = load_config(
        SparkdlConfig,
        files=[REPO / "conf" / "local.yaml"],
        overrides=[f"prepare.input.path={raw}", f"prepare.output={root}"],
    )
    with caplog.at_level(logging.WARNING):
        result = run_prepare(spark, cfg=cfg.prepare)
    assert f"its process {dead.pid} on this host is gone" in caplog.text
    assert f"removing {leftover.as_uri().replace('file:///', 'file:/')} left by an" in caplog.text
    assert not leftover.exists() and not (root / LOCK_NAME).exists()
    assert open_dataset(spark, str(root)).manifest.version == result.version
