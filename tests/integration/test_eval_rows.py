"""Validation and test metrics of a 2-rank Horovod run score every row once (digits: splits that
are no multiple of batch x ranks), agree with ``sparkdl evaluate``, and petastorm stays quiet."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sparkdl.config.serve import EvaluateConfig
from sparkdl.data.dataset import open_dataset
from sparkdl.serve.evaluate import run_evaluate
from tests.integration.datasets import prepare_sklearn_set

pytestmark = pytest.mark.integration

BATCH = 32


@pytest.fixture(scope="module")
def digits(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import load_digits

    split = "{train: 0.8, validation: 0.1, test: 0.1, salt: 5}"
    return prepare_sklearn_set(spark, tmp_path_factory.mktemp("digits"), load_digits, split=split)


@dataclass(frozen=True)
class Trained:
    """A finished ``jobs/train_horovod.py`` run: its metrics.json and its whole output."""

    metrics: dict[str, Any]
    output: str
    dataset: str


@pytest.fixture(scope="module")
def trained(
    python: str, repo: Path, digits: str, tmp_path_factory: pytest.TempPathFactory
) -> Trained:
    """Train 2 epochs on 2 ranks through the job entry point, as a user would."""
    out = tmp_path_factory.mktemp("digits-run") / "train"
    settings = [
        f"train.dataset={digits}",
        f"train.output={out}",
        "train.epochs=2",
        f"train.batch_size={BATCH}",
        "train.learning_rate=0.003",
        "train.model.hidden=32",
        "launch.num_workers=2",
        "launch.start_timeout_s=60",
        "spark.log_level=ERROR",
    ]
    proc = subprocess.run(
        [python, "jobs/train_horovod.py", "--config", "conf/local.yaml"]
        + [a for s in settings for a in ("--set", s)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    return Trained(metrics=metrics, output=proc.stdout + proc.stderr, dataset=digits)


def _evaluate(spark: Any, trained: Trained, split: str, out: Path) -> dict[str, Any]:
    cfg = EvaluateConfig(
        model=trained.metrics["model"], split=split, output=str(out), write_predictions=False
    )
    return run_evaluate(spark, cfg=cfg).metrics


def test_splits_are_no_multiple_of_batch_times_ranks(spark: Any, digits: str) -> None:
    ds = open_dataset(spark, digits)
    for split in ("validation", "test"):
        shards = ds.rank_rows(split, 2)
        # the equal-steps rule would score 2 * (smallest shard // 32) * 32 rows of these
        assert 2 * (min(shards) // BATCH) * BATCH < ds.rows(split), (split, shards)


def test_test_metrics_cover_every_row_and_equal_sparkdl_evaluate(
    spark: Any, trained: Trained, tmp_path: Path
) -> None:
    rows = open_dataset(spark, trained.dataset).rows("test")
    metrics = trained.metrics
    assert metrics["test_rows"] == rows
    evaluated = _evaluate(spark, trained, "test", tmp_path / "eval-test")
    assert evaluated["rows"] == rows
    assert metrics["test"]["accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-9)
    assert metrics["test"]["loss"] == pytest.approx(evaluated["log_loss"], rel=1e-4)


def test_validation_metrics_cover_every_row_and_equal_sparkdl_evaluate(
    spark: Any, trained: Trained, tmp_path: Path
) -> None:
    rows = open_dataset(spark, trained.dataset).rows("validation")
    metrics = trained.metrics
    assert metrics["validation_rows"] == rows
    history = metrics["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert all("val_loss" in h and "val_accuracy" in h for h in history)
    # the last epoch's validation scores the exported (final) weights
    evaluated = _evaluate(spark, trained, "validation", tmp_path / "eval-validation")
    assert history[-1]["val_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-9)
    assert history[-1]["val_loss"] == pytest.approx(evaluated["log_loss"], rel=1e-4)
    assert metrics["validation"] == {k: v for k, v in history[-1].items() if k.startswith("val_")}


def test_rank_output_holds_no_petastorm_cache_message(trained: Trained) -> None:
    assert "[rank 0/2 " in trained.output and "[rank 1/2 " in trained.output  # ranks' lines
    assert "Cache cleanup complete." not in trained.output
