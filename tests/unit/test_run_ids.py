"""Pipeline run ids and run dates: one folder inside pipeline.root, a real calendar date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sparkdl.errors import BadInputError
from sparkdl.pipeline.state import check_run_date, check_run_id, run_folder


@pytest.mark.parametrize(
    "run_id", ["2026-11-22", "nightly-2026-11-22", "a", "Run_7.retry-2", "x" * 128]
)
def test_valid_run_ids(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id",
    [
        "../../escaped-run",
        "../x",
        "..",
        ".",
        "a/b",
        "/abs",
        "a\\b",
        ".hidden",
        "-rf",
        "",
        "x" * 129,
        "with space",
        "run\n2",
        "naïve",
    ],
)
def test_invalid_run_ids_refused(run_id: str) -> None:
    with pytest.raises(BadInputError, match=r"--run-id .* is not a valid run id: use 1 to 128"):
        check_run_id(run_id)


@pytest.mark.parametrize("run_date", ["2026-11-22", "2024-02-29", "1999-12-31"])
def test_valid_run_dates(run_date: str) -> None:
    assert check_run_date(run_date) == run_date


@pytest.mark.parametrize(
    ("run_date", "why"),
    [
        ("2026-13-45", "month must be in 1..12"),
        ("2026-02-30", "day is out of range for month"),
        ("2025-02-29", "day is out of range for month"),
        ("2026-00-10", "month must be in 1..12"),
        ("20261122", "it is not written YYYY-MM-DD"),
        ("2026-W47-1", "it is not written YYYY-MM-DD"),
        ("2026-11-22T00:00", "it is not written YYYY-MM-DD"),
        ("22-11-2026", "it is not written YYYY-MM-DD"),
        ("", "it is not written YYYY-MM-DD"),
    ],
)
def test_invalid_run_dates_refused(run_date: str, why: str) -> None:
    with pytest.raises(BadInputError, match=rf"--run-date '{run_date}' is not a date: {why}"):
        check_run_date(run_date)


def test_run_folder_is_directly_inside_root(tmp_path: Path) -> None:
    assert run_folder(tmp_path / "runs", "r1").uri == str((tmp_path / "runs").resolve() / "r1")
    assert run_folder(f"file://{tmp_path}/runs", "r1").uri == f"file://{tmp_path.resolve()}/runs/r1"
    assert run_folder("hdfs://nn:8020/runs/", "r1").uri == "hdfs://nn:8020/runs/r1"
    with pytest.raises(
        BadInputError, match=re.escape("pipeline.root='ftp://h/runs': no file system")
    ):
        run_folder("ftp://h/runs", "r1")
    with pytest.raises(BadInputError, match="not a valid run id"):
        run_folder(tmp_path / "runs", "../../escaped-run")


def test_run_folder_linked_outside_root_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "r1").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BadInputError, match=r"resolves to .*elsewhere, outside pipeline.root"):
        run_folder(root, "r1")
