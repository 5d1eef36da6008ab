"""The rank child process: results, environment, failures with their last output lines."""

from __future__ import annotations

import os
import sys
import time

import pytest

from sparkdl.launch.child import TAIL_LINES, RankError, run_in_child


def _env_value(name: str) -> str | None:
    return os.environ.get(name)


def _noisy_failure(lines: int) -> None:
    for i in range(lines):
        print(f"line {i}")
    sys.exit(3)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _kill_self() -> None:
    os.kill(os.getpid(), 9)


def _parent_pid() -> tuple[int, int]:
    return os.getppid(), int(os.environ["SPARKDL_PARENT_PID"])


def test_returns_value_and_sees_env() -> None:
    assert run_in_child(pow, args=(3, 4), env={}, label="[t]") == 81
    assert (
        run_in_child(
            _env_value, args=("SPARKDL_TEST_X",), env={"SPARKDL_TEST_X": "42"}, label="[t]"
        )
        == "42"
    )
    assert "SPARKDL_TEST_X" not in os.environ


def test_parent_pid_is_this_process() -> None:
    ppid, recorded = run_in_child(_parent_pid, env={}, label="[t]")
    assert ppid == recorded == os.getpid()


def test_failure_carries_exit_status_and_last_100_lines() -> None:
    echoed: list[str] = []
    with pytest.raises(RankError, match="exited with status 3") as info:
        run_in_child(_noisy_failure, args=(150,), env={}, label="[rank 7]", echo=echoed.append)
    message = str(info.value)
    assert "line 149" in message and "line 50\n" in message
    assert "line 49\n" not in message
    assert message.count("\nline ") == TAIL_LINES
    assert echoed[0] == "[rank 7] line 0" and len(echoed) == 150


def test_exception_traceback_reaches_the_message() -> None:
    with pytest.raises(RankError, match="ZeroDivisionError"):
        run_in_child(divmod, args=(1, 0), env={}, label="[t]", echo=lambda _l: None)


def test_killed_child_reports_signal() -> None:
    with pytest.raises(RankError, match="killed by signal 9"):
        run_in_child(_kill_self, env={}, label="[t]", echo=lambda _l: None)


def test_timeout_kills_child() -> None:
    start = time.monotonic()
    with pytest.raises(RankError, match="did not finish within 2 s"):
        run_in_child(_sleep, args=(60,), env={}, label="[t]", timeout_s=2, echo=lambda _l: None)
    assert time.monotonic() - start < 30
