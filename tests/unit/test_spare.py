"""Warm spare rank processes: reused only with a matching environment, once, fresh each run."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from sparkdl.launch import spare
from sparkdl.launch.child import RankError, run_in_child


def _who(name: str) -> tuple[int, str | None, bool]:
    return os.getpid(), os.environ.get(name), "wave" in sys.modules


def _fail() -> None:
    raise ValueError("boom")


@pytest.fixture(autouse=True)
def light_preload(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A stdlib module nothing else imports stands in for TensorFlow: the test checks that the
    # spare imported it before the run, without paying TensorFlow's import time.
    monkeypatch.setattr(spare, "PRELOAD", ("wave",))
    spare.drop()
    yield
    spare.drop()


def test_second_run_uses_the_spare_with_the_new_horovod_env() -> None:
    pid1, rank1, preloaded1 = run_in_child(
        _who, args=("HOROVOD_RANK",), env={"HOROVOD_RANK": "0"}, label="[t]", warm_start=True
    )
    assert (rank1, preloaded1) == ("0", False)  # the first run starts cold
    assert spare._spare is not None
    waiting = spare._spare[1].pid
    pid2, rank2, preloaded2 = run_in_child(
        _who, args=("HOROVOD_RANK",), env={"HOROVOD_RANK": "1"}, label="[t]", warm_start=True
    )
    assert pid2 == waiting != pid1
    assert (rank2, preloaded2) == ("1", True)
    # a spare runs once: the next one is a new process
    assert spare._spare is not None and spare._spare[1].pid not in (pid1, pid2)


def test_spare_with_other_environment_is_not_used() -> None:
    run_in_child(_who, args=("X",), env={"SPARKDL_T": "a"}, label="[t]", warm_start=True)
    assert spare._spare is not None
    stale = spare._spare[1]
    pid, value, preloaded = run_in_child(
        _who, args=("SPARKDL_T",), env={"SPARKDL_T": "b"}, label="[t]", warm_start=True
    )
    assert (value, preloaded) == ("b", False)
    assert pid != stale.pid and stale.poll() is not None  # the stale spare was killed


def test_failure_in_a_spare_is_reported_and_a_new_spare_waits() -> None:
    run_in_child(_who, args=("X",), env={}, label="[t]", warm_start=True)
    with pytest.raises(RankError, match="ValueError: boom"):
        run_in_child(_fail, env={}, label="[t]", warm_start=True)
    assert spare._spare is not None and spare._spare[1].poll() is None


def test_off_by_default_leaves_no_spare() -> None:
    run_in_child(_who, args=("X",), env={}, label="[t]")
    assert spare._spare is None


def test_spare_key_ignores_per_run_variables() -> None:
    a = spare.spare_key({"HOROVOD_RANK": "0", "SPARKDL_PARENT_PID": "1", "PATH": "/bin"})
    assert a == spare.spare_key({"HOROVOD_RANK": "3", "SPARKDL_PARENT_PID": "9", "PATH": "/bin"})
    assert a != spare.spare_key({"PATH": "/usr/bin"})
