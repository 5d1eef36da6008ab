"""A rank's temporary files live in its run folder and end with it (nothing stays on the node)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from sparkdl.launch.child import TMP_PREFIX, RankError, run_in_child


def _stage(fail: bool) -> str:
    """What a rank does with its staging folder: write files under a fresh temp folder."""
    staged = Path(tempfile.mkdtemp(prefix="sparkdl-tensorboard-"))
    (staged / "events.out.tfevents.1").write_bytes(b"x" * 1000)
    if fail:
        print(f"staged {staged}", flush=True)
        raise RuntimeError("the rank failed after staging")
    return str(staged)


def test_temporary_files_of_the_child_go_with_its_run_folder() -> None:
    staged = Path(run_in_child(_stage, args=(False,), env={}, label="[t]"))
    assert staged.parent.name.startswith(TMP_PREFIX)  # under the run's own folder
    assert not staged.parent.exists()  # removed with it when the child ended


def test_a_failed_child_leaves_no_temporary_files_either() -> None:
    echoed: list[str] = []
    with pytest.raises(RankError, match="the rank failed after staging"):
        run_in_child(_stage, args=(True,), env={}, label="[t]", echo=echoed.append)
    staged = Path(next(line for line in echoed if "staged " in line).split("staged ", 1)[1])
    assert staged.parent.name.startswith(TMP_PREFIX)
    assert not staged.exists() and not staged.parent.exists()
