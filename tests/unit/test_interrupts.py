"""Attempt fencing, resume errors, bad input from ranks, leftover run folders (no Spark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tensorflow as tf

from sparkdl.errors import BadInputError
from sparkdl.launch.child import (
    TMP_PREFIX,
    RankError,
    remove_stale_folders,
    run_in_child,
)
from sparkdl.launch.inputerror import SCOPE as INPUT_ERROR_SCOPE
from sparkdl.launch.inputerror import input_error_in, reported_input_error
from sparkdl.launch.rendezvous import SECRET_ENV, RendezvousService
from sparkdl.train.checkpoint import (
    FencedError,
    claim_fence,
    fenced,
    latest_checkpoint,
    publish_folder,
    restore_checkpoint,
    write_checkpoint,
)
from sparkdl.train.precheck import check_model_function


def _write(root: Path, epoch: int, value: float, fence) -> str:
    v = tf.Variable([value, value])
    return write_checkpoint(
        tf.train.Checkpoint(v=v),
        root=str(root),
        epoch=epoch,
        history=[{"epoch": e} for e in range(epoch + 1)],
        fence=fence,
    )


def test_stale_attempt_cannot_write_or_prune_the_new_attempts_checkpoints(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    old = claim_fence(str(root), attempt=0)
    _write(root, 0, 1.0, old)
    _write(root, 1, 2.0, old)
    new = claim_fence(str(root), attempt=1)  # the retry resumes from epoch-0001
    resume = latest_checkpoint(str(root))
    assert resume is not None and resume.epoch == 1
    # The given-up attempt's rank 0 lives on and finishes epoch 2, then 3.
    for epoch in (2, 3):
        with pytest.raises(FencedError, match=r"attempt 0 .* may not publish .* names attempt 1"):
            _write(root, epoch, 9.0, old)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["epoch-0001"]
    assert json.loads((root / "checkpoint.json").read_text())["epoch"] == 1
    restored = tf.Variable([0.0, 0.0])
    assert restore_checkpoint(tf.train.Checkpoint(v=restored), path=resume.path, required=True)
    assert restored.numpy().tolist() == [2.0, 2.0]
    # The current attempt publishes and prunes as before.
    _write(root, 2, 3.0, new)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["epoch-0002"]


def test_stale_attempt_cannot_replace_the_exported_model(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    old = claim_fence(str(root), attempt=0)
    new = claim_fence(str(root), attempt=1)

    def save(tag: str):
        def write(path: str) -> None:
            Path(path).mkdir()
            Path(path, "saved.txt").write_text(tag)

        return write

    publish_folder(save("new"), target=str(tmp_path / "model"), fence=new)
    with pytest.raises(FencedError, match="may not publish"):
        publish_folder(save("old"), target=str(tmp_path / "model"), fence=old)
    assert (tmp_path / "model" / "saved.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "model"]


def test_claiming_the_fence_waits_for_a_publish_in_progress(tmp_path: Path) -> None:
    old = claim_fence(str(tmp_path), attempt=0)
    entered, release = threading.Event(), threading.Event()

    def publish() -> None:
        with fenced(old):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=publish)
    t.start()
    entered.wait(10)
    claimed: list[float] = []
    c = threading.Thread(target=lambda: claimed.append(claim_fence(str(tmp_path), attempt=1)))
    c.start()
    time.sleep(0.5)
    assert not claimed  # the driver waits while the old attempt holds the lock
    release.set()
    t.join(10)
    c.join(10)
    assert claimed and claimed[0].attempt == 1
    with pytest.raises(FencedError), fenced(old):
        pass


def test_damaged_checkpoint_pointer_is_bad_input(tmp_path: Path) -> None:
    fence = claim_fence(str(tmp_path), attempt=0)
    _write(tmp_path, 0, 1.0, fence)
    (tmp_path / "checkpoint.json").write_text('{"epoch": 0, "fol')
    with pytest.raises(BadInputError, match=r"checkpoint pointer .*checkpoint.json is damaged"):
        latest_checkpoint(str(tmp_path))


def test_missing_or_unreadable_resume_checkpoint_is_an_error(tmp_path: Path) -> None:
    fence = claim_fence(str(tmp_path), attempt=0)
    path = _write(tmp_path, 0, 1.0, fence) + "/ckpt"
    target = tf.train.Checkpoint(v=tf.Variable([0.0, 0.0]))
    gone = str(tmp_path / "epoch-0009" / "ckpt")
    with pytest.raises(
        BadInputError, match=r"cannot resume from checkpoint .*epoch-0009.* does not"
    ):
        restore_checkpoint(target, path=gone, required=True)
    # another rank that cannot see it gets rank 0's state from the broadcast
    assert restore_checkpoint(target, path=gone, required=False) is False
    # a checkpoint of something else: rank 0 would start from fresh weights
    other = tf.train.Checkpoint(w=tf.Variable([0.0, 0.0]))
    with pytest.raises(BadInputError, match=r"cannot resume from checkpoint .* cannot be read"):
        restore_checkpoint(other, path=path, required=True)
    data = next(Path(path).parent.glob("ckpt.data-*"))
    data.write_bytes(b"\x00" * 3)
    with pytest.raises(BadInputError, match="cannot be read"):
        restore_checkpoint(target, path=path, required=True)


def good_builder(*, input_dim: int, num_classes: int) -> None:
    """A name check_model_function must find (never called)."""


@pytest.mark.parametrize(
    ("function", "match"),
    [
        ("tests.unit.no_such_module:build", r"no module named 'tests\.unit\.no_such_module'"),
        ("no_such_package.models:build", r"no_such_package\.models cannot be found"),
        ("tests.unit.test_interrupts:no_such_builder", r"defines no 'no_such_builder'"),
    ],
)
def test_model_function_checked_on_the_driver(function: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        check_model_function(function)


def test_model_function_check_passes_real_and_dynamic_names(tmp_path: Path, monkeypatch) -> None:
    check_model_function("tests.unit.test_interrupts:good_builder")
    (tmp_path / "dyn_models.py").write_text("from json import *\n")
    (tmp_path / "broken_models.py").write_text("def build(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check_model_function("dyn_models:anything")  # may come from the star import
    with pytest.raises(BadInputError, match="syntax error at line 1"):
        check_model_function("broken_models:build")


def _bad_input() -> None:
    raise BadInputError("train.model.function='m:f' returned str, not a Keras model")


def _plain_failure() -> None:
    raise RuntimeError("not a bad input")


def test_bad_input_in_a_rank_reaches_the_driver_as_bad_input() -> None:
    with pytest.raises(RankError, match="on bad input: BadInputError") as info:
        run_in_child(_bad_input, env={}, label="[rank 0]", echo=lambda _l: None)
    # The driver sees only text (a Py4J error holding the task's traceback).
    text = f"py4j.protocol.Py4JJavaError: ... RankError: {info.value}\n\tat org.apache..."
    error = input_error_in(text)
    assert isinstance(error, BadInputError)
    assert str(error) == "train.model.function='m:f' returned str, not a Keras model"
    with pytest.raises(RankError) as plain:
        run_in_child(_plain_failure, env={}, label="[rank 0]", echo=lambda _l: None)
    assert input_error_in(str(plain.value)) is None


def test_bad_input_reaches_the_driver_before_the_rank_exits() -> None:
    # Its peers fail once it exits; the report at the driver's rendezvous server names it
    # whichever task's failure Spark shows.
    with RendezvousService(host="127.0.0.1") as rdv:
        env = {
            "HOROVOD_GLOO_RENDEZVOUS_ADDR": rdv.host,
            "HOROVOD_GLOO_RENDEZVOUS_PORT": str(rdv.port),
            "HOROVOD_RANK": "1",
            SECRET_ENV: rdv.secret.hex(),
        }
        with pytest.raises(RankError, match="on bad input"):
            run_in_child(_bad_input, env=env, label="[rank 1]", echo=lambda _l: None)
        reports = rdv.scope_items(INPUT_ERROR_SCOPE)
        with pytest.raises(RankError):
            run_in_child(_plain_failure, env={**env, "HOROVOD_RANK": "0"}, label="[rank 0]",
                         echo=lambda _l: None)  # fmt: skip
        assert rdv.scope_items(INPUT_ERROR_SCOPE) == reports  # a plain failure reports nothing
    assert list(reports) == ["rank-1"]
    note = reported_input_error(reports)
    assert note.startswith(" (rank 1) on bad input: BadInputError: train.model.function='m:f'")
    assert str(input_error_in(f"LaunchError: a Horovod rank of 2 failed{note}")) == (
        "train.model.function='m:f' returned str, not a Keras model"
    )


def test_run_folders_of_dead_owners_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TMP_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def"
    unknown = tmp_path / f"{TMP_PREFIX}x1y2z3"
    for folder in (stale, live, unknown):
        folder.mkdir()
        (folder / "payload.pkl").write_bytes(b"x")
    assert remove_stale_folders(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and unknown.exists()


def test_processes_a_dead_owners_rank_left_are_killed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # What a rank started (in the group it leads) outlives it when SIGKILL takes the rank.
    left = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "SPARKDL_PARENT_PID": str(dead.pid)},
        start_new_session=True,
    )
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        folder = tmp_path / f"{TMP_PREFIX}{dead.pid}-abc"
        folder.mkdir()
        (folder / "group").write_text(str(left.pid))
        (tmp_path / f"{TMP_PREFIX}{dead.pid}-def").mkdir()
        (tmp_path / f"{TMP_PREFIX}{dead.pid}-def" / "group").write_text(str(other.pid))
        assert len(remove_stale_folders(str(tmp_path))) == 2
        assert left.wait(timeout=10) == -9
        assert other.poll() is None  # same folder layout, but not that owner's process
    finally:
        for proc in (left, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_run_folder_is_named_after_its_owner_and_removed() -> None:
    import tempfile

    def folder_of_this_run() -> str:
        return str(Path(sys.argv[1]).parent)

    folder = run_in_child(folder_of_this_run, env={}, label="[t]", echo=lambda _l: None)
    assert Path(folder).name.startswith(f"{TMP_PREFIX}{os.getpid()}-")
    assert Path(folder).parent == Path(tempfile.gettempdir())
    assert not Path(folder).exists()
