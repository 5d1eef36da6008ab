"""MLflow tracking end to end on local[2]: a pipeline run logged to a local file store and read
back (parent, a child per step, params, tags, per-epoch metrics, the pyfunc model scoring raw
rows as ``sparkdl predict`` does), a single command's run, and an unreachable tracking server
refused before any work."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sparkdl
from sparkdl.config import SparkdlConfig
from sparkdl.errors import EXIT_INFRA, BadInputError, InfraError
from sparkdl.pipeline.run import PipelineResult, run_pipeline
from sparkdl.tracking.params import git_commit
from tests.integration.test_pipeline import _cfg

pytestmark = pytest.mark.integration

STEPS = ["generate", "prepare", "train", "sgd", "kmeans"]  # evaluate: 20 s, same code path
FAST = [
    "train.epochs=2",
    "sgd.epochs=3",
    "pipeline.compare_mllib=false",
    f"pipeline.steps=[{', '.join(STEPS)}]",
    "tracking.mlflow=true",
    "tracking.experiment=pipeline-test",
]


@pytest.fixture(scope="module")
def tracked(
    spark: Any, repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineResult, SparkdlConfig, Any, Path]:
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("tracked")
    store = tmp / "mlruns"
    cfg = _cfg(repo, tmp, *FAST, f"tracking.tracking_uri={store}")
    result = run_pipeline(spark, cfg=cfg, run_id="track-1", run_date="2026-12-01")
    return result, cfg, MlflowClient(tracking_uri=store.as_uri()), tmp


def _runs(client: Any, where: str) -> list[Any]:
    experiment = client.get_experiment_by_name("pipeline-test").experiment_id
    return client.search_runs([experiment], filter_string=where, max_results=100)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_one_parent_run_with_a_child_per_step(tracked: Any) -> None:
    result, _, client, _ = tracked
    run_dir = Path(result.run_dir)
    (parent,) = _runs(client, "tags.`sparkdl.kind` = 'pipeline'")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "pipeline track-1"
    version = _json(run_dir / "state.json")["steps"]["prepare"]["outputs"]["version"]
    tags = parent.data.tags
    assert tags["sparkdl.run_id"] == "track-1" and tags["sparkdl.dataset_version"] == version
    commit = git_commit()
    assert tags["sparkdl.code_version"] == (commit or f"sparkdl {sparkdl.__version__}")
    # the whole config, as the run used it (paths pointed at the run folder)
    assert parent.data.params["train.epochs"] == "2"
    assert parent.data.params["train.output"] == str(run_dir / "train")
    assert parent.data.params["spark.conf.spark.sql.shuffle.partitions"] == "4"

    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.info.run_name for c in children) == sorted(STEPS)
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sparkdl.run_id"] == "track-1"
        assert child.data.tags["sparkdl.step"] == child.info.run_name
        if child.info.run_name != "generate":  # the dataset exists from prepare on
            assert child.data.tags["sparkdl.dataset_version"] == version
    by_name = {c.info.run_name: c for c in children}
    assert by_name["train"].data.params["launch.num_workers"] == "2"
    assert not any(k.startswith("sgd.") for k in by_name["train"].data.params)
    assert by_name["sgd"].data.params["sgd.epochs"] == "3"
    splits = _json(run_dir / "state.json")["steps"]["prepare"]["outputs"]["splits"]
    prepared = by_name["prepare"].data.metrics
    assert {k: v for k, v in prepared.items()} == {f"rows_{s}": n for s, n in splits.items()}


def test_per_epoch_metrics_of_training_and_each_baseline(tracked: Any) -> None:
    result, _, client, _ = tracked
    run_dir = Path(result.run_dir)
    (parent,) = _runs(client, "tags.`sparkdl.kind` = 'pipeline'")
    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    runs = {c.info.run_name: c.info.run_id for c in children}

    def series(step: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(runs[step], key)]

    train = _json(run_dir / "train" / "metrics.json")
    assert len(train["history"]) == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert series("train", key) == [(int(h["epoch"]), h[key]) for h in train["history"]]
    final = client.get_run(runs["train"]).data.metrics
    assert final["test_accuracy"] == train["test"]["accuracy"]
    assert final["samples_per_s"] == train["samples_per_s"]

    sgd = _json(run_dir / "sgd" / "metrics.json")
    assert series("sgd", "train_loss") == [
        (int(h["epoch"]), h["train_loss"]) for h in sgd["history"]
    ]
    assert len(sgd["history"]) == 3
    assert series("sgd", "test_accuracy")[-1] == (2, sgd["test"]["accuracy"])

    kmeans = _json(run_dir / "kmeans" / "metrics.json")
    assert series("kmeans", "cost") == list(enumerate(kmeans["cost_per_iteration"]))
    assert client.get_run(runs["kmeans"]).data.metrics["nmi"] == kmeans["metrics"]["nmi"]


def test_the_logged_model_scores_raw_rows_as_sparkdl_predict_does(spark: Any, tracked: Any) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from sparkdl.config.data import SourceConfig
    from sparkdl.config.serve import PredictConfig
    from sparkdl.serve.predict import run_predict

    result, cfg, client, tmp = tracked
    (train,) = _runs(client, "tags.`sparkdl.step` = 'train'")
    model = mlflow.pyfunc.load_model(f"{train.info.artifact_uri}/model")

    # raw rows as pandas reads the generated CSV: every input column, typed, labels included
    part = sorted(Path(cfg.generate.output).glob("*.csv"))[0]
    rows = pd.read_csv(part).head(300)
    rows.loc[[0, 5], "x0"] = float("nan")  # missing: NaN in pandas, an empty field in the CSV
    assert set(rows.columns) >= {"id", "x0", "c0", "label"}
    scored = model.predict(rows)
    assert list(scored["id"]) == list(rows["id"])  # every row, in input order

    rows.to_csv(tmp / "rows.csv", index=False)
    served = run_predict(
        spark,
        cfg=PredictConfig(
            model=str(Path(result.run_dir) / "train" / "model"),
            raw=SourceConfig(path=str(tmp / "rows.csv")),
            output=str(tmp / "served"),
        ),
    )
    expected = (
        spark.read.parquet(served.output).toPandas().set_index("id").loc[scored["id"].tolist()]
    )
    assert len(expected) == len(rows) == 300
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(
        np.stack(scored["probability"].to_numpy()),
        np.stack(expected["probability"].to_numpy()),
        atol=1e-6,
    )
    # unlabelled rows score the same
    bare = model.predict(rows.drop(columns=["label"]))
    assert "label" not in bare.columns
    assert bare["prediction"].tolist() == scored["prediction"].tolist()


def test_a_single_command_logs_one_run(spark: Any, tracked: Any) -> None:
    from sparkdl.commands import COMMANDS
    from sparkdl.config import load_config
    from sparkdl.tracking import open_tracking

    result, cfg, client, tmp = tracked
    alone = load_config(
        SparkdlConfig,
        overrides=[
            f"sgd.dataset={cfg.prepare.output}",
            f"sgd.output={tmp / 'sgd-alone'}",
            "sgd.epochs=2",
            f"tracking.tracking_uri={tmp / 'mlruns'}",
            "tracking.experiment=pipeline-test",
        ],
    )
    # what commands.run_command does around the command, in this test session's Spark
    with open_tracking(alone.tracking).command(spark, "sgd", alone):
        _, ok = COMMANDS["sgd"].run(spark, alone, argparse.Namespace(compare=False))
    assert ok
    (run,) = _runs(client, "tags.`sparkdl.kind` = 'sgd'")
    assert run.info.status == "FINISHED" and "mlflow.parentRunId" not in run.data.tags
    assert run.data.tags["sparkdl.run_id"].startswith("sgd-")
    version = _json(Path(result.run_dir) / "state.json")["steps"]["prepare"]["outputs"]["version"]
    assert run.data.tags["sparkdl.dataset_version"] == version
    assert run.data.params["sgd.epochs"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2


def test_an_unreachable_tracking_server_fails_the_run_at_start(
    spark: Any, repo: Path, tmp_path: Path
) -> None:
    from sparkdl.commands import run_command

    cfg = _cfg(repo, tmp_path, *FAST, "tracking.tracking_uri=http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(InfraError, match=r"tracking\.tracking_uri='http://127\.0\.0\.1:9'"):
        run_pipeline(spark, cfg=cfg, run_id="never")
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "raw").exists() and not (tmp_path / "runs").exists()

    args = argparse.Namespace(
        config_files=[],
        overrides=[
            f"train.output={tmp_path / 'train'}",
            "tracking.tracking_uri=http://127.0.0.1:9",
        ],
    )
    assert run_command("train", args) == EXIT_INFRA
    assert not (tmp_path / "train").exists()


def test_rerunning_a_finished_run_leaves_mlflow_alone(spark: Any, tracked: Any) -> None:
    _, cfg, client, _ = tracked
    (parent,) = _runs(client, "tags.`sparkdl.kind` = 'pipeline'")
    again = run_pipeline(spark, cfg=cfg, run_id="track-1", run_date="2026-12-01")
    assert again.ran == [] and again.skipped == STEPS
    (same,) = _runs(client, "tags.`sparkdl.kind` = 'pipeline'")
    assert same.info.run_id == parent.info.run_id and same.info.status == "FINISHED"
    assert same.info.end_time == parent.info.end_time
    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == len(STEPS)


def test_a_resumed_run_continues_its_parent_run(spark: Any, repo: Path, tracked: Any) -> None:
    _, _, client, tmp = tracked
    steps = ["prepare", "sgd", "kmeans"]
    cfg = _cfg(
        repo,
        tmp,
        *FAST,
        f"pipeline.steps=[{', '.join(steps)}]",
        f"tracking.tracking_uri={tmp / 'mlruns'}",
    )
    blocker = tmp / "runs" / "track-2" / "sgd"  # a file where sgd's output folder must go
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    with pytest.raises(BadInputError, match=r"sgd\.output=.* cannot be written"):
        run_pipeline(spark, cfg=cfg, run_id="track-2")
    where = "tags.`sparkdl.kind` = 'pipeline' and tags.`sparkdl.run_id` = 'track-2'"
    (failed,) = _runs(client, where)
    assert failed.info.status == "FAILED"

    blocker.unlink()
    resumed = run_pipeline(spark, cfg=cfg, run_id="track-2")
    assert resumed.skipped == ["prepare"] and resumed.ran == ["sgd", "kmeans"]
    (parent,) = _runs(client, where)
    assert parent.info.run_id == failed.info.run_id and parent.info.status == "FINISHED"
    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted((c.info.run_name, c.info.status) for c in children) == [
        ("kmeans", "FINISHED"),
        ("prepare", "FINISHED"),
        ("sgd", "FAILED"),
        ("sgd", "FINISHED"),
    ]
    version = parent.data.tags["sparkdl.dataset_version"]
    assert {c.data.tags["sparkdl.dataset_version"] for c in children} == {version}
