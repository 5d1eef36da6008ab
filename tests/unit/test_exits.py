"""Exit codes come from error classes; an unexpected error leaves its traceback in the log file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkdl.errors import (
    BadInputError,
    ClusterMisfitError,
    InfraError,
    OutputLockedError,
    RunInterruptedError,
)
from sparkdl.exits import exit_code_for, guarded


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadInputError("bad value"), 2),
        (ClusterMisfitError("too few slots"), 2),
        (OutputLockedError("held by pid 1"), 2),
        (InfraError("ranks failed"), 3),
        (RunInterruptedError("stopped"), 130),
        (KeyboardInterrupt(), 130),
        # builtin types say nothing about the cause: a library's ValueError is unexpected
        (ValueError("from numpy"), 1),
        (OSError("disk"), 1),
        (KeyError("bug"), 1),
    ],
)
def test_exit_code_follows_the_class(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_unexpected_error_prints_one_line_and_logs_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPARKDL_LOG_DIR", str(tmp_path))

    def body() -> int:
        return {}["missing-key"]

    assert guarded("demo", body) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sparkdl demo: unexpected error: KeyError: 'missing-key'")
    (log,) = tmp_path.glob("demo-*.log")
    assert f"traceback in {log}" in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "missing-key" in text


def test_sparkdl_error_line_names_its_kind_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPARKDL_LOG_DIR", str(tmp_path))

    def body() -> int:
        raise ClusterMisfitError("launch.num_workers=5 but 2 slots; lower launch.num_workers")

    assert guarded("train", body) == 2
    err = capsys.readouterr().err
    assert err == (
        "sparkdl train: the cluster cannot run this as configured: launch.num_workers=5 but 2 "
        "slots; lower launch.num_workers\n"
    )
