"""Output locks: one writer per output root, named when it refuses another, stale rules."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sparkdl.errors import BadInputError, OutputLockedError
from sparkdl.lock import (
    LOCK_NAME,
    STALE_ENV,
    LockHolder,
    OutputLock,
    current_holder,
    output_lock,
    stale_seconds,
)
from sparkdl.lockfile import _command

# Holds the lock on argv[1] until a line arrives on stdin (or the process is killed).
HOLD = """
import sys
from sparkdl.lock import output_lock
with output_lock(sys.argv[1], what="train.output"):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def holder_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process on this host holding the lock on ``tmp_path / 'out'``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _lock_file(root: Path) -> dict[str, object]:
    return json.loads((root / LOCK_NAME).read_text())


def _write_lock(root: Path, holder: LockHolder) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK_NAME).write_text(holder.to_json())


def test_acquire_writes_holder_and_release_removes_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out, what="train.output") as lock:
        assert lock.held
        content = _lock_file(out)
        assert content["pid"] == os.getpid()
        assert content["host"] == socket.gethostname()
        assert content["what"] == "train.output"
        assert content["user"]
        assert content["command"]
        assert content["started"] and content["refreshed"]
    assert not (out / LOCK_NAME).exists()
    assert not lock.held


def test_released_when_the_body_raises(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyError, match="boom"), output_lock(out, what="sgd.output"):
        raise KeyError("boom")
    assert not (out / LOCK_NAME).exists()


def test_second_writer_refused_naming_the_holder(
    tmp_path: Path, holder_process: subprocess.Popen[str]
) -> None:
    out = tmp_path / "out"
    before = (out / LOCK_NAME).read_text()
    pattern = (
        rf"train.output {out} is locked by another run: user \S+ on host "
        rf"{socket.gethostname()}, pid {holder_process.pid}, command '.*', started .*"
        rf"\(lock {out / LOCK_NAME}\)\. Wait for that run to finish"
    )
    with pytest.raises(OutputLockedError, match=pattern) as info:
        output_lock(out, what="train.output").acquire()
    assert info.value.exit_code == 2
    assert (out / LOCK_NAME).read_text() == before  # the holder's lock is untouched
    # the holder releases it; then the next writer gets it
    assert holder_process.stdin is not None and holder_process.stdout is not None
    holder_process.stdin.write("\n")
    holder_process.stdin.flush()
    assert holder_process.stdout.readline().strip() == "released"
    with output_lock(out, what="train.output") as lock:
        assert lock.held


def test_dead_holder_on_this_host_is_taken_over(
    tmp_path: Path, holder_process: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    os.kill(holder_process.pid, signal.SIGKILL)  # no finally runs: the lock stays behind
    holder_process.wait(timeout=10)
    assert (out / LOCK_NAME).exists()
    with caplog.at_level(logging.WARNING, logger="sparkdl.lock"), output_lock(out, what="x"):
        assert _lock_file(out)["pid"] == os.getpid()
    assert f"its process {holder_process.pid} on this host is gone" in caplog.text
    assert "taking over the stale lock" in caplog.text


def test_reused_pid_on_this_host_is_stale(tmp_path: Path) -> None:
    # The pid runs (it is our parent) but it started long after the lock's holder did.
    out = tmp_path / "out"
    _write_lock(out, replace(current_holder(what="x"), pid=os.getppid(), pid_started=1.0))
    with output_lock(out, what="train.output"):
        assert _lock_file(out)["pid"] == os.getpid()


def test_fresh_lock_from_another_host_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    foreign = replace(current_holder(what="x"), host="node-7.example", pid=4242, pid_started=None)
    _write_lock(out, foreign)
    with pytest.raises(OutputLockedError, match=r"on host node-7\.example, pid 4242.*600 s"):
        OutputLock(out, what="prepare.output", stale_s=600).acquire()
    assert LockHolder.from_json((out / LOCK_NAME).read_text()) == foreign


def test_stale_lock_from_another_host_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv(STALE_ENV, "30")
    old = time.time() - 45
    foreign = replace(
        current_holder(what="x"), host="node-7.example", started_unix=old, refreshed_unix=old
    )
    _write_lock(out, foreign)
    with caplog.at_level(logging.WARNING, logger="sparkdl.lock"), output_lock(out, what="x"):
        assert _lock_file(out)["host"] == socket.gethostname()
    assert re.search(rf"not refreshed for 4\d s \(more than 30 s, {STALE_ENV}\)", caplog.text)
    # the same lock 10 s old is live under that setting
    fresh = replace(foreign, refreshed_unix=time.time() - 10)
    _write_lock(out, fresh)
    with pytest.raises(OutputLockedError, match=r"node-7\.example"):
        output_lock(out, what="prepare.output").acquire()


def test_holder_refreshes_its_lock(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputLock(out, what="train.output", stale_s=0.4):
        first = _lock_file(out)["refreshed_unix"]
        time.sleep(0.5)
        later = _lock_file(out)
    assert later["refreshed_unix"] > first
    assert later["started_unix"] <= first


def test_same_process_reenters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out, what="pipeline run folder") as outer:
        token = _lock_file(out)["token"]
        with output_lock(out, what="sgd.output") as inner:
            assert inner.held
        assert _lock_file(out)["token"] == token  # the inner release kept the outer's lock
        assert outer.held
    assert not (out / LOCK_NAME).exists()


def test_unreadable_lock_refused_while_young_taken_over_when_old(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text("{not json")
    with pytest.raises(OutputLockedError, match=r"cannot be read \(being written, or damaged\)"):
        OutputLock(out, what="train.output", stale_s=60).acquire()
    old = time.time() - 120
    os.utime(out / LOCK_NAME, (old, old))
    with OutputLock(out, what="train.output", stale_s=60):
        assert _lock_file(out)["pid"] == os.getpid()


@pytest.mark.parametrize("value", ["0", "-5", "ten", "nan"])
def test_bad_stale_setting_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(STALE_ENV, value)
    with pytest.raises(BadInputError, match=rf"{STALE_ENV}='{value}' is not a positive number"):
        stale_seconds()


def test_command_hides_secret_looking_values() -> None:
    text = _command(
        ["/x/sparkdl/cli.py", "train", "--set", "spark.conf.spark.authenticate.secret=s3cr3t"]
    )
    assert text == "sparkdl train --set spark.conf.spark.authenticate.secret=***"
