"""The end-to-end pipeline on local[2]: a whole run, idempotent re-runs, resume after a failure,
distributed evaluation against Keras, and batch inference on raw data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.pipeline import run as pipeline_run
from sparkdl.pipeline.run import PipelineResult, run_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.long]

ALL = ["generate", "prepare", "train", "sgd", "kmeans", "evaluate", "report"]


def _cfg(repo: Path, tmp: Path, *extra: str) -> SparkdlConfig:
    return load_config(
        SparkdlConfig,
        files=[repo / "conf" / "local.yaml"],
        overrides=[
            "generate.rows=6000",
            "generate.label_noise=0.02",
            f"generate.output={tmp / 'raw'}",
            f"prepare.input.path={tmp / 'raw'}",
            f"prepare.output={tmp / 'prepared'}",
            f"pipeline.root={tmp / 'runs'}",
            "train.epochs=3",
            "train.batch_size=64",
            "train.learning_rate=0.003",
            "train.model.hidden=32",
            "sgd.batch_size=64",
            "pipeline.mllib_cost_iterations=3",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def finished(
    spark: Any, repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineResult, SparkdlConfig]:
    tmp = tmp_path_factory.mktemp("pipeline")
    cfg = _cfg(repo, tmp)
    return run_pipeline(spark, cfg=cfg, run_id="run-1", run_date="2026-11-22"), cfg


def test_whole_run_writes_models_metrics_and_report(
    finished: tuple[PipelineResult, SparkdlConfig],
) -> None:
    result, _ = finished
    run = Path(result.run_dir)
    assert result.ran == ALL and result.skipped == []
    state = json.loads((run / "state.json").read_text())
    assert sorted(s for s, e in state["steps"].items() if e["status"] == "done") == sorted(ALL)
    assert state["run_date"] == "2026-11-22"
    report = json.loads((run / "report" / "report.json").read_text())
    evaluated = json.loads((run / "evaluate" / "metrics.json").read_text())["metrics"]
    assert report["evaluate"]["metrics"] == evaluated
    assert evaluated["accuracy"] > 0.8 and 0.5 < evaluated["roc_auc"] <= 1.0
    assert sum(map(sum, evaluated["confusion_matrix"])) == evaluated["rows"]
    assert set(report["plots"]) == {
        "training_curves.png",
        "accuracy_vs_time.png",
        "kmeans_cost.png",
        "throughput.png",
    }
    for plot in report["plots"]:
        assert (run / "report" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (run / "report" / "report.md").read_text()
    assert f"{evaluated['accuracy']:.4f}" in md and "MLlib LogisticRegression" in md
    assert len(report["mllib_kmeans"]["cost_per_iteration"]) == 3
    log = (run / "pipeline.log").read_text()
    assert "sparkdl.train.runner" in log and "ParallelSGD" in log


def test_rerunning_a_finished_run_does_nothing(
    spark: Any, finished: tuple[PipelineResult, SparkdlConfig]
) -> None:
    result, cfg = finished
    model = Path(result.run_dir) / "train" / "metrics.json"
    before = model.stat().st_mtime_ns
    again = run_pipeline(spark, cfg=cfg, run_id="run-1", run_date="2026-11-22")
    assert again.ran == [] and again.skipped == ALL
    assert model.stat().st_mtime_ns == before


def test_same_run_id_with_another_config_is_refused(
    spark: Any, repo: Path, finished: tuple[PipelineResult, SparkdlConfig]
) -> None:
    _, cfg = finished
    changed = load_config(
        SparkdlConfig, overrides=[f"pipeline.root={cfg.pipeline.root}", "train.epochs=9"]
    )
    with pytest.raises(ValueError, match="started with another config"):
        run_pipeline(spark, cfg=changed, run_id="run-1")


def test_failed_run_resumes_at_the_first_unfinished_step(
    spark: Any, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(repo, tmp_path, "pipeline.compare_mllib=false")
    real = pipeline_run.STEPS["sgd"]
    calls = {"n": 0}

    def flaky(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("executor lost (rehearsed)")
        return real.run(*args)

    monkeypatch.setitem(pipeline_run.STEPS, "sgd", dataclasses.replace(real, run=flaky))
    with pytest.raises(OSError, match="rehearsed"):
        run_pipeline(spark, cfg=cfg, run_id="r")
    state = json.loads((tmp_path / "runs" / "r" / "state.json").read_text())["steps"]
    assert {s: e["status"] for s, e in state.items()} == {
        "generate": "done",
        "prepare": "done",
        "train": "done",
        "sgd": "failed",
    }
    assert "executor lost" in state["sgd"]["error"]
    trained = (tmp_path / "runs" / "r" / "train" / "metrics.json").stat().st_mtime_ns
    resumed = run_pipeline(spark, cfg=cfg, run_id="r")
    assert resumed.skipped == ["generate", "prepare", "train"]
    assert resumed.ran == ["sgd", "kmeans", "evaluate", "report"]
    assert (tmp_path / "runs" / "r" / "train" / "metrics.json").stat().st_mtime_ns == trained


def test_distributed_evaluation_agrees_with_keras_evaluate(
    spark: Any, finished: tuple[PipelineResult, SparkdlConfig]
) -> None:
    import tensorflow as tf

    from sparkdl.baselines.compare import local_split
    from sparkdl.data.dataset import open_dataset

    result, cfg = finished
    run = Path(result.run_dir)
    ours = json.loads((run / "evaluate" / "metrics.json").read_text())["metrics"]
    x, y = local_split(open_dataset(spark, cfg.prepare.output), "test")
    model = tf.keras.models.load_model(run / "train" / "model", compile=False)
    model.compile(
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    keras = model.evaluate(x, y, batch_size=512, verbose=0, return_dict=True)
    assert ours["rows"] == len(y)
    assert ours["accuracy"] == pytest.approx(keras["accuracy"], abs=1e-6)
    assert ours["log_loss"] == pytest.approx(keras["loss"], rel=1e-4)


def test_predictions_on_raw_data_match_those_on_the_prepared_split(
    spark: Any, finished: tuple[PipelineResult, SparkdlConfig], tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    from sparkdl.config.data import SourceConfig
    from sparkdl.config.serve import PredictConfig
    from sparkdl.serve.predict import run_predict

    result, cfg = finished
    model = str(Path(result.run_dir) / "train" / "model")
    raw = run_predict(
        spark,
        cfg=PredictConfig(
            model=model, raw=SourceConfig(path=cfg.generate.output), output=str(tmp_path / "raw")
        ),
    )
    assert raw.rows == cfg.generate.rows
    prepared = spark.read.parquet(str(Path(result.run_dir) / "evaluate" / "predictions"))
    joined = (
        spark.read.parquet(raw.output)
        .select("id", F.col("prediction").alias("p_raw"), F.col("probability").alias("q_raw"))
        .join(prepared.select("id", "prediction", "probability"), "id")
    )
    rows = joined.collect()
    assert len(rows) == prepared.count() > 0
    assert all(r["p_raw"] == r["prediction"] for r in rows)
    np.testing.assert_allclose(
        [r["q_raw"] for r in rows], [r["probability"] for r in rows], atol=1e-6
    )
    assert "label" in spark.read.parquet(raw.output).columns

    # New data comes without labels: the same rows with the label column removed
    unlabelled = str(tmp_path / "unlabelled")
    (
        spark.read.option("header", True)
        .csv(cfg.generate.output)
        .drop("label")
        .write.option("header", True)
        .csv(unlabelled)
    )
    bare = run_predict(
        spark,
        cfg=PredictConfig(
            model=model, raw=SourceConfig(path=unlabelled), output=str(tmp_path / "bare")
        ),
    )
    assert bare.rows == cfg.generate.rows
    out = spark.read.parquet(bare.output)
    assert "label" not in out.columns
    same = (
        out.select("id", F.col("prediction").alias("p_bare"))
        .join(spark.read.parquet(raw.output).select("id", "prediction"), "id")
        .where(F.col("p_bare") == F.col("prediction"))
        .count()
    )
    assert same == cfg.generate.rows
