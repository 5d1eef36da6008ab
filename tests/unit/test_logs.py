"""The per-run log files: several runs share one folder and prune it at the same time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkdl import logs


def _touch(folder: Path, name: str, mtime: float) -> Path:
    path = folder / name
    path.write_text("x\n", encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def test_prune_keeps_the_newest_and_skips_a_file_another_run_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_KEEP_LOGS", 2)
    old = _touch(tmp_path, "a-old.log", 1000.0)
    mid = _touch(tmp_path, "b-mid.log", 2000.0)
    new = _touch(tmp_path, "c-new.log", 3000.0)
    gone = tmp_path / "d-gone.log"  # listed, then removed by a concurrent run before its stat
    real_glob = Path.glob

    def glob_with_a_vanished_file(self: Path, pattern: str):  # type: ignore[no-untyped-def]
        return [*real_glob(self, pattern), gone]

    monkeypatch.setattr(Path, "glob", glob_with_a_vanished_file)
    logs._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [mid.name, new.name]
    assert not old.exists()


def test_run_log_writes_this_runs_file_while_others_share_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path))
    _touch(tmp_path, "other-run.log", 1000.0)
    import logging

    with logs.run_log("unit") as path:
        logging.getLogger("sparkdl.unit").warning("written to the run log")
    assert path.parent == tmp_path
    assert "written to the run log" in path.read_text(encoding="utf-8")
    assert (tmp_path / "other-run.log").exists()
