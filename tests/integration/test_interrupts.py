"""Interrupts, bad input from ranks and broken resumes end a training run without a retry."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.errors import BadInputError, RunInterruptedError
from sparkdl.interrupts import InterruptGuard
from sparkdl.train.runner import run_training
from tests.integration.datasets import REPO, generate_and_prepare

pytestmark = pytest.mark.integration

TAG = "SPARKDL_TEST_INTERRUPT_TAG"


def not_a_model(*, input_dim: int, num_classes: int) -> str:
    """A model function that builds no model: every rank fails the same way."""
    return f"not a model ({input_dim} -> {num_classes})"


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A prepared 2-worker dataset of 3000 generated rows."""
    return generate_and_prepare(spark, tmp_path_factory.mktemp("irq-data"), "generate.rows=3000")


def _overrides(dataset: str, output: Path, *extra: str) -> list[str]:
    return [
        f"train.dataset={dataset}",
        f"train.output={output}",
        "train.batch_size=32",
        "train.model.hidden=8",
        "launch.num_workers=2",
        "launch.start_timeout_s=60",
        *extra,
    ]


def _ranks_of(tag: str) -> list[psutil.Process]:
    """Rank processes (sparkdl.launch._entry) started on behalf of the run tagged ``tag``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            command = proc.info["cmdline"] or []
            if "sparkdl.launch._entry" in command and proc.environ().get(TAG) == tag:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _checkpointed_epoch(root: Path) -> int:
    try:
        return int(json.loads((root / "checkpoint.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.timeout(900)  # a whole `sparkdl train` (session, preflight) on a shared machine
def test_sigint_stops_training_with_130_and_no_rank_survives(dataset: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    out = tmp_path / "run"
    sets = [f"--set={s}" for s in _overrides(dataset, out, "train.epochs=30")]
    config = f"--config={REPO / 'conf' / 'local.yaml'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparkdl.cli", "train", config, *sets],
        env={**os.environ, TAG: tag, "SPARKDL_LOG_DIR": str(tmp_path / "logs")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while _checkpointed_epoch(out / "checkpoints") < 1:
            assert proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "no checkpoint of epoch 1:\n" + "".join(output)
            time.sleep(0.2)
        assert _ranks_of(tag), "the ranks should be running now"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    text = "".join(output)
    assert code == 130, text[-3000:]
    assert "sparkdl train: interrupted: training was interrupted by SIGINT" in text
    assert "(attempt 2)" not in text and "attempt 1 of 3 failed" not in text, text[-3000:]
    assert not (out / "metrics.json").exists()
    assert _ranks_of(tag) == []
    # Nothing was written after the interrupt: the checkpoint it left is the last one.
    epoch = _checkpointed_epoch(out / "checkpoints")
    time.sleep(3)
    assert _checkpointed_epoch(out / "checkpoints") == epoch < 29


def test_guard_cancels_a_running_job_on_sigterm(spark) -> None:
    sc = spark.sparkContext

    def slow(_rows):
        time.sleep(120)
        yield 1

    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    start = time.monotonic()
    guard = InterruptGuard(sc, what="test job")
    with pytest.raises(RunInterruptedError, match="interrupted by SIGTERM"), guard:
        try:
            sc.parallelize(range(2), 2).mapPartitions(slow).collect()
        except Exception as exc:
            guard.check(exc)
            raise
    assert time.monotonic() - start < 30
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def _launches(caplog: pytest.LogCaptureFixture, what: str = "") -> int:
    """Barrier stages launched (of ``what``, a rank function's dotted name, when given)."""
    said = (r.getMessage() for r in caplog.records)
    return sum("Spark barrier tasks as Horovod ranks" in m and what in m for m in said)


def test_missing_model_function_fails_before_any_stage(
    spark, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sparkdl")
    cfg = load_config(
        SparkdlConfig,
        overrides=_overrides(
            dataset,
            tmp_path / "nofn",
            "train.model.kind=custom",
            "train.model.function=tests.integration.test_interrupts:no_such_builder",
        ),
    )
    with pytest.raises(BadInputError, match=r"test_interrupts \(.*\) defines no 'no_such_builder'"):
        run_training(spark, train=cfg.train, launch=cfg.launch, skip_preflight=True)
    assert _launches(caplog) == 0


@pytest.mark.parametrize("predict", [False, True], ids=["no-plan", "plan"])
def test_bad_input_on_the_ranks_ends_the_first_attempt(
    spark, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, predict: bool
) -> None:
    caplog.set_level(logging.INFO, logger="sparkdl")
    cfg = load_config(
        SparkdlConfig,
        overrides=_overrides(
            dataset,
            tmp_path / "notmodel",
            "train.model.kind=custom",
            "train.model.function=tests.integration.test_interrupts:not_a_model",
            "train.max_attempts=3",
            f"train.predict={str(predict).lower()}",
        ),
    )
    with pytest.raises(BadInputError, match=r"not_a_model' returned str, not a Keras model"):
        run_training(spark, train=cfg.train, launch=cfg.launch, skip_preflight=True)
    assert _launches(caplog) == 1
    # with the plan on, its calibration's ranks (sharing this host) met the bad model first:
    # the run ends there, and no training stage starts only to fail the same way
    trained = _launches(caplog, "sparkdl.train.worker.train_rank")
    assert (trained, _launches(caplog, "sparkdl.plan.timing")) == ((0, 1) if predict else (1, 0))


def test_unreadable_resume_checkpoint_is_an_error(
    spark, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import tensorflow as tf

    from sparkdl.train.checkpoint import claim_fence, write_checkpoint

    caplog.set_level(logging.INFO, logger="sparkdl")
    out = tmp_path / "resume"
    # A checkpoint that passes the driver's checksums but holds none of the model's variables:
    # before, rank 0 read it "partially" and began epoch 1 from fresh weights.
    fence = claim_fence(str(out / "checkpoints"), attempt=0)
    write_checkpoint(
        tf.train.Checkpoint(other=tf.Variable([1.0])),
        root=fence.root,
        epoch=0,
        history=[{"epoch": 0, "loss": 0.5}],
        fence=fence,
    )
    cfg = load_config(SparkdlConfig, overrides=_overrides(dataset, out, "train.epochs=2"))
    with pytest.raises(BadInputError, match=r"cannot resume from checkpoint .*epoch-0000/ckpt"):
        run_training(spark, train=cfg.train, launch=cfg.launch, skip_preflight=True)
    # one training attempt (the plan's calibration, when not cached yet, is another stage)
    assert _launches(caplog, "sparkdl.train.worker.train_rank") == 1
    assert not (out / "metrics.json").exists()
