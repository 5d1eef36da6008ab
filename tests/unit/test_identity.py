"""Telling this project's sparkdl from Databricks' old package of the same name."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import sparkdl
from sparkdl.identity import inspect_identity, require_this_project


def _fake_foreign(tmp_path: Path) -> Path:
    pkg = tmp_path / "sparkdl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from sparkdl.horovod import HorovodRunner  # Databricks'\n")
    (pkg / "horovod.py").write_text("class HorovodRunner: pass\n")
    return tmp_path


def test_this_project_is_recognised() -> None:
    ident = inspect_identity()
    assert ident.is_this_project
    assert Path(ident.module_file).resolve() == Path(sparkdl.__file__).resolve()


def test_foreign_module_is_rejected() -> None:
    foreign = types.ModuleType("sparkdl")
    foreign.__file__ = "/databricks/python/lib/sparkdl/__init__.py"
    assert not inspect_identity(foreign).is_this_project


def test_second_copy_on_path_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_fake_foreign(tmp_path)))
    ident = inspect_identity()
    assert str((tmp_path / "sparkdl").resolve()) in ident.shadowed_copies
    require_this_project()  # ours is imported: a warning, not an error


def test_job_refuses_to_run_with_foreign_sparkdl_first(tmp_path: Path, repo: Path) -> None:
    foreign = _fake_foreign(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(repo / "jobs" / "allreduce_check.py")],
        env={"PYTHONPATH": str(foreign), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "not the sparkdl-pipeline project" in proc.stderr
    assert str(foreign / "sparkdl") in proc.stderr
