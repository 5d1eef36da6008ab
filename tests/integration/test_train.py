"""Horovod training on local[2]: accuracy, identical weights, kill-and-resume, stalls, refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.data.dataset import open_dataset
from sparkdl.errors import BadInputError
from sparkdl.launch import LaunchError
from sparkdl.launch.preflight import preflight
from sparkdl.train.runner import TrainResult, run_training
from tests.integration.datasets import generate_and_prepare

pytestmark = pytest.mark.integration

EPOCHS = 3


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A prepared 2-worker dataset of 6000 generated rows."""
    return generate_and_prepare(
        spark,
        tmp_path_factory.mktemp("train-data"),
        "generate.rows=6000",
        "generate.label_noise=0.02",
    )


def _cfg(dataset: str, output: Path | str, *overrides: str) -> SparkdlConfig:
    return load_config(
        SparkdlConfig,
        overrides=[
            f"train.dataset={dataset}",
            f"train.output={output}",
            f"train.epochs={EPOCHS}",
            "train.batch_size=64",
            "train.learning_rate=0.003",
            "train.model.hidden=32",
            "launch.num_workers=2",
            "launch.start_timeout_s=60",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def uninterrupted(spark, dataset: str, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    cfg = _cfg(dataset, tmp_path_factory.mktemp("run") / "plain")
    return run_training(spark, train=cfg.train, launch=cfg.launch)


def test_two_ranks_reach_accuracy_with_identical_weights(uninterrupted: TrainResult) -> None:
    assert uninterrupted.attempts == 1 and uninterrupted.resumed_from_epoch is None
    assert uninterrupted.test["accuracy"] >= 0.80, uninterrupted.test
    assert len(uninterrupted.weight_digests) == 2
    assert len(set(uninterrupted.weight_digests)) == 1
    assert [h["epoch"] for h in uninterrupted.history] == list(range(EPOCHS))
    assert all("val_accuracy" in h and "val_loss" in h for h in uninterrupted.history)
    out = Path(uninterrupted.output)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["attempts"] == 1
    assert metrics["weights_identical_on_all_ranks"] is True
    assert metrics["samples_per_s"] > 0 and metrics["wall_s"] > 0
    assert metrics["test"] == uninterrupted.test
    assert Path(metrics["featurizer"].removeprefix("file:")).is_dir()
    assert (
        json.loads((out / "model" / "sparkdl_model.json").read_text())["featurizer"]
        == metrics["featurizer"]
    )
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    ckpt = json.loads((out / "checkpoints" / "checkpoint.json").read_text())
    assert ckpt["epoch"] == EPOCHS - 1 and len(ckpt["history"]) == EPOCHS
    # the plan's prediction for this run, made before it, beside the measured epoch time
    plan = metrics["plan"]
    predicted = plan["predicted"]
    assert predicted["workers"] == 2 and predicted["mode"] == "sync"
    assert predicted["epoch_s"] > 0 and predicted["comm_s"] > 0 and predicted["compute_s"] > 0
    assert plan["measured_epoch_s"] > 0
    assert plan["ratio"] == pytest.approx(plan["measured_epoch_s"] / predicted["epoch_s"])


def test_memory_fed_training_learns_like_parquet_fed(
    spark, dataset: str, uninterrupted: TrainResult, tmp_path: Path
) -> None:
    # train.output as a file: URI (the store layer's, on the ranks and on the driver)
    cfg = _cfg(dataset, f"file://{tmp_path}/memory", "train.data_source=memory")
    result = run_training(spark, train=cfg.train, launch=cfg.launch)
    assert result.output == f"file://{tmp_path}/memory"
    assert result.export_dir == f"file://{tmp_path}/memory/model"
    assert result.test["accuracy"] >= 0.80, result.test
    assert len(set(result.weight_digests)) == 1
    assert [h["epoch"] for h in result.history] == list(range(EPOCHS))
    out = tmp_path / "memory"
    # everything on the store, nothing staged left behind (the lock is gone once released)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "metrics.json",
        "model",
        "run.json",
        "tensorboard",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_source"] == "memory" and metrics["samples_per_s"] > 0
    # rank 0 held exactly its own shard of the training split
    shard = open_dataset(spark, dataset).rank_rows("train", workers=2)[0]
    assert metrics["rank0_memory_rows"] == shard > 0
    plain = json.loads((Path(uninterrupted.output) / "metrics.json").read_text())
    assert plain["data_source"] == "parquet" and plain["rank0_memory_rows"] == 0
    # other row order, same rows and steps: about the Parquet-fed run's accuracy
    assert abs(result.test["accuracy"] - uninterrupted.test["accuracy"]) < 0.03


def test_an_output_the_driver_cannot_write_is_refused_before_any_launch(
    spark, dataset: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("in the way")
    cfg = _cfg(dataset, tmp_path / "file" / "run")
    with pytest.raises(
        BadInputError, match=r"train.output=.*file/run cannot be written from the driver"
    ):
        run_training(spark, train=cfg.train, launch=cfg.launch, skip_preflight=True)
    assert (tmp_path / "file").read_text() == "in the way"


def test_exported_model_predicts(uninterrupted: TrainResult, spark) -> None:
    import numpy as np
    import tensorflow as tf

    from sparkdl.data.dataset import open_dataset

    model = tf.keras.models.load_model(uninterrupted.export_dir)
    ds = open_dataset(
        spark,
        json.loads((Path(uninterrupted.output) / "metrics.json").read_text())["dataset"]["root"],
    )
    rows = ds.read(spark, "test").limit(200).toPandas()
    logits = model.predict(np.stack(rows["features"].to_numpy()), verbose=0)
    assert logits.shape == (len(rows), 2)
    assert (logits.argmax(axis=1) == rows["label"].to_numpy()).mean() >= 0.75


def test_killed_rank_resumes_from_checkpoint(
    spark, dataset: str, tmp_path: Path, uninterrupted: TrainResult, capfd, caplog
) -> None:
    cfg = _cfg(
        dataset,
        tmp_path / "killed",
        "train.fault.kind=kill",
        "train.fault.rank=1",
        "train.fault.epoch=1",
        "train.fault.batch=3",
    )
    result = run_training(spark, train=cfg.train, launch=cfg.launch)
    assert result.attempts == 2
    assert result.resumed_from_epoch == 0
    assert [h["epoch"] for h in result.history] == list(range(EPOCHS))  # each epoch once
    assert abs(result.test["accuracy"] - uninterrupted.test["accuracy"]) <= 0.005
    # Epoch-seeded data order and dropout make the resumed run replay the uninterrupted one.
    assert result.weight_digests == uninterrupted.weight_digests
    retry = next(
        r.getMessage() for r in caplog.records if "attempt 1 of 3 failed" in r.getMessage()
    )
    assert "was killed by signal 9" in retry
    assert "sparkdl fault injection: kill at rank 1, epoch 1, batch 3, attempt 0" in retry
    progress = capfd.readouterr().err  # the driver's live progress lines
    assert "[sparkdl train] [#######             ] epoch 1/3 (attempt 1)" in progress
    assert f"[sparkdl train] [{'#' * 20}] epoch {EPOCHS}/{EPOCHS} (attempt 2)" in progress


def test_failing_rank_exhausts_attempts(spark, dataset: str, tmp_path: Path) -> None:
    cfg = _cfg(dataset, tmp_path / "raise", "train.fault.kind=raise", "train.max_attempts=1")
    with pytest.raises(LaunchError, match=r"failed in all 1 attempts") as info:
        run_training(spark, train=cfg.train, launch=cfg.launch)
    assert "injected fault at rank 0, epoch 0, batch 0, attempt 0" in str(info.value)


def test_stalled_rank_fails_within_timeout(spark, dataset: str, tmp_path: Path) -> None:
    cfg = _cfg(
        dataset,
        tmp_path / "stall",
        "train.fault.kind=stall",
        "train.fault.rank=1",
        "train.fault.batch=2",
        "train.max_attempts=1",
        "launch.stall_timeout_s=10",
    )
    start = time.monotonic()
    with pytest.raises(LaunchError, match=r"stalled: .*launch.stall_timeout_s=10"):
        run_training(spark, train=cfg.train, launch=cfg.launch)
    assert time.monotonic() - start < cfg.launch.start_timeout_s + 10 + 60


def test_output_of_another_run_is_refused(spark, dataset: str, uninterrupted: TrainResult) -> None:
    cfg = _cfg(dataset, Path(uninterrupted.output), "train.model.hidden=16")
    with pytest.raises(ValueError, match="holds a run for another dataset version or train config"):
        run_training(spark, train=cfg.train, launch=cfg.launch)


def test_preflight_on_the_live_session(spark) -> None:
    preflight(spark, launch=load_config(SparkdlConfig).launch)
    with pytest.raises(
        RuntimeError, match=r"launch.num_workers=3 but the cluster \(local\[2\]\) offers 2"
    ):
        preflight(
            spark,
            launch=load_config(
                SparkdlConfig, overrides=["launch.num_workers=3", "launch.start_timeout_s=2"]
            ).launch,
        )


@pytest.mark.cluster
def test_train_job_on_local_cluster_with_fp16_compression(
    dataset: str, tmp_path: Path, repo: Path
) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "cluster-run"
    proc = subprocess.run(
        [
            sys.executable,
            "jobs/train_horovod.py",
            "--config",
            "conf/local-cluster.yaml",
            "--set",
            f"train.dataset={dataset}",
            "--set",
            f"train.output={out}",
            "--set",
            "train.epochs=3",
            "--set",
            "train.batch_size=64",
            "--set",
            "train.learning_rate=0.003",
            "--set",
            "train.compression=fp16",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trained 3 epochs on 2 Horovod ranks" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["compression"] == "fp16"
    assert metrics["weights_identical_on_all_ranks"] is True
    assert metrics["test"]["accuracy"] >= 0.78
