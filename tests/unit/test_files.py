"""Result files written through sparkdl.files get the process umask's mode, like the rest."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sparkdl.files import write_json, write_npz


@pytest.fixture(params=[0o022, 0o027, 0o002], ids=oct)
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_results_get_the_umask_mode_of_any_other_file(tmp_path: Path, umask: int) -> None:
    write_json(tmp_path / "metrics.json", {"accuracy": np.float32(0.5)})
    write_npz(tmp_path / "model.npz", w=np.arange(3))
    (tmp_path / "other.txt").write_text("x")  # what open() gives under the same umask
    expected = 0o666 & ~umask
    assert _mode(tmp_path / "metrics.json") == expected
    assert _mode(tmp_path / "model.npz") == expected
    assert _mode(tmp_path / "other.txt") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.npz", "other.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})

    class Unwritable:
        def item(self) -> object:
            raise RuntimeError("cannot serialise")

    with pytest.raises(RuntimeError, match="cannot serialise"):
        write_json(target, {"a": Unwritable()})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
