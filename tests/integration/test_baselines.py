"""ParallelSGD and k-means on real prepared data, against single-process SGD, MLlib and sklearn."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparkdl.baselines import compare, linear
from sparkdl.baselines.kmeans import KMeansResult, run_kmeans
from sparkdl.baselines.sgd import SGDResult, run_parallel_sgd
from sparkdl.config.baselines import BlockFaultConfig, KMeansConfig, SGDConfig
from sparkdl.data.dataset import PreparedDataset, open_dataset
from sparkdl.errors import BadInputError, ClusterMisfitError
from tests.integration.datasets import generate_and_prepare, prepare_frame, prepare_sklearn_set

pytestmark = [pytest.mark.integration, pytest.mark.long]


@pytest.fixture(scope="module")
def generated(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_and_prepare(spark, tmp_path_factory.mktemp("sgd-gen"), "generate.rows=12000")


@pytest.fixture(scope="module")
def blobs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_and_prepare(
        spark,
        tmp_path_factory.mktemp("blobs"),
        "generate.rows=8000",
        "generate.clusters=5",
        "prepare.columns.label_values=[0, 1, 2, 3, 4]",
        profiles=("local.yaml", "blobs.yaml"),
    )


@pytest.fixture(scope="module")
def breast_cancer(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import load_breast_cancer

    split = "{train: 0.7, validation: 0.0, test: 0.3, salt: 3}"
    return prepare_sklearn_set(
        spark, tmp_path_factory.mktemp("bc"), load_breast_cancer, split=split
    )


@pytest.fixture(scope="module")
def digits(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import load_digits

    split = "{train: 0.8, validation: 0.0, test: 0.2, salt: 5}"
    return prepare_sklearn_set(spark, tmp_path_factory.mktemp("digits"), load_digits, split=split)


def _all_rows(ds: PreparedDataset) -> tuple[np.ndarray, np.ndarray]:
    parts = [compare.local_split(ds, s) for s in ds.manifest.splits if ds.rows(s)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _accuracy(kind: str, w: linear.Weights, x: np.ndarray, y: np.ndarray) -> float:
    return linear.finish_metrics(kind, linear.score_sums(kind, w, x, y))["accuracy"]


def _mllib_weights(spark: Any, ds: PreparedDataset, l2: float) -> linear.Weights:
    from pyspark.ml.classification import LogisticRegression

    # The same objective as ParallelSGD: mean log loss + l2/2 |w|^2 on the prepared
    # (already standardised) features.
    model = LogisticRegression(
        maxIter=500, regParam=l2, family="binomial", standardization=False, tol=1e-9
    ).fit(compare.vectors(spark, ds, "train"))
    return linear.Weights(model.coefficients.toArray()[:, None], np.array([model.intercept]))


def _sgd(spark: Any, dataset: str, out: Path, **kw: Any) -> SGDResult:
    return run_parallel_sgd(spark, cfg=SGDConfig(dataset=dataset, output=str(out), **kw))


@pytest.mark.parametrize(
    ("fixture", "settings"),
    [
        ("generated", {"epochs": 4, "batch_size": 64}),
        # 398 training rows: many local epochs, one average (Zinkevich's one-shot scheme)
        (
            "breast_cancer",
            {
                "mode": "oneshot",
                "epochs": 200,
                "batch_size": 16,
                "learning_rate": 0.1,
                "lr_decay": 0.99,
                "l2": 0.01,
            },
        ),
    ],
)
def test_parallel_sgd_matches_single_process_sgd_and_mllib(
    spark: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fixture: str,
    settings: dict[str, Any],
) -> None:
    dataset = request.getfixturevalue(fixture)
    ds = open_dataset(spark, dataset)
    parallel = _sgd(spark, dataset, tmp_path / "p", partitions=2, **settings)
    single = _sgd(spark, dataset, tmp_path / "s", partitions=1, **settings)
    x, y = _all_rows(ds)
    accs = {
        "parallel": _accuracy("logistic", parallel.weights, x, y),
        "single": _accuracy("logistic", single.weights, x, y),
        "mllib": _accuracy("logistic", _mllib_weights(spark, ds, settings.get("l2", 1e-5)), x, y),
    }
    assert abs(accs["parallel"] - accs["single"]) <= 0.005, accs
    assert abs(accs["parallel"] - accs["mllib"]) <= 0.005, accs
    assert parallel.test["accuracy"] > (0.9 if fixture == "breast_cancer" else 0.6), parallel.test
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["partitions"] == 2 and len(metrics["history"]) == (
        settings["epochs"] if settings.get("mode") != "oneshot" else 1
    )
    with np.load(tmp_path / "p" / "model.npz") as saved:
        np.testing.assert_array_equal(saved["W"], parallel.weights.W)


def test_softmax_on_digits_and_engines_agree_bit_for_bit(
    spark: Any, digits: str, tmp_path: Path
) -> None:
    runs = {
        engine: _sgd(
            spark, digits, tmp_path / engine, partitions=2, epochs=6, batch_size=32, engine=engine
        )
        for engine in ("barrier", "jobs")
    }
    assert runs["barrier"].kind == "softmax"
    assert runs["barrier"].test["accuracy"] > 0.9, runs["barrier"].test
    np.testing.assert_array_equal(runs["barrier"].weights.W, runs["jobs"].weights.W)
    np.testing.assert_array_equal(runs["barrier"].weights.b, runs["jobs"].weights.b)


def test_linear_regression_recovers_the_coefficients(
    spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4000, 5))
    coef = np.array([1.5, -2.0, 0.0, 0.7, 3.0])
    y = x @ coef + 0.5 + rng.normal(scale=0.1, size=4000)
    dataset = prepare_frame(
        spark,
        tmp_path_factory.mktemp("reg"),
        x,
        y,
        task="regression",
        split="{train: 0.8, validation: 0.0, test: 0.2}",
    )
    r = _sgd(
        spark,
        dataset,
        tmp_path_factory.mktemp("reg-out"),
        epochs=8,
        batch_size=32,
        learning_rate=0.05,
        lr_decay=0.8,
    )
    assert r.kind == "linear"
    assert r.test["rmse"] < 0.15, r.test


def _retried(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The engine's retry messages: proof that the injected fault fired and was recovered."""
    return [
        r.getMessage() for r in caplog.records if "engine attempt 1 of 3 failed" in r.getMessage()
    ]


def test_sgd_rerun_and_recovery_from_a_failed_task_give_identical_weights(
    spark: Any, generated: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = _sgd(spark, generated, tmp_path / "a", partitions=2, epochs=3, batch_size=64)
    again = _sgd(spark, generated, tmp_path / "b", partitions=2, epochs=3, batch_size=64)
    failed_once = _sgd(
        spark,
        generated,
        tmp_path / "c",
        partitions=2,
        epochs=3,
        batch_size=64,
        fault=BlockFaultConfig(partition=1, iteration=1),
    )
    retries = _retried(caplog)
    assert len(retries) == 1 and "injected fault: partition 1 at iteration 1" in retries[0]
    for other in (again, failed_once):
        np.testing.assert_array_equal(base.weights.W, other.weights.W)
        assert [h["epoch"] for h in other.history] == [0.0, 1.0, 2.0]


def test_bad_settings_are_refused_with_the_fix(spark: Any, generated: str, tmp_path: Path) -> None:
    # the cluster must change (exit 2), not the data: a ClusterMisfitError
    with pytest.raises(
        ClusterMisfitError, match="lower the partitions setting or choose engine=jobs"
    ):
        _sgd(spark, generated, tmp_path / "x", partitions=3)
    with pytest.raises(BadInputError, match="is a classification task"):
        _sgd(spark, generated, tmp_path / "y", model="linear")
    with pytest.raises(BadInputError, match=r"lower kmeans\.k"):
        run_kmeans(spark, cfg=KMeansConfig(dataset=generated, output=str(tmp_path / "z"), k=10**6))


def _kmeans(spark: Any, dataset: str, out: Path, **kw: Any) -> KMeansResult:
    return run_kmeans(spark, cfg=KMeansConfig(dataset=dataset, output=str(out), **kw))


@pytest.mark.parametrize(("fixture", "k"), [("blobs", 5), ("digits", 10)])
def test_kmeans_cost_within_one_percent_of_mllib_and_sklearn(
    spark: Any, request: pytest.FixtureRequest, tmp_path: Path, fixture: str, k: int
) -> None:
    dataset = request.getfixturevalue(fixture)
    ds = open_dataset(spark, dataset)
    ours = _kmeans(spark, dataset, tmp_path, k=k, max_iter=100)
    same = compare.mllib_kmeans_same_init(
        spark, ds, "train", init=ours.init_centers, max_iter=100, tol=1e-4
    )
    sk = compare.sklearn_kmeans(
        ds, "train", init=ours.init_centers, max_iter=300, tol=0.0, threads=2
    )
    cost = ours.metrics["cost"]
    assert abs(cost - same["cost"]) <= 0.01 * same["cost"], (cost, same)
    assert abs(cost - sk["cost"]) <= 0.01 * sk["cost"], (cost, sk)
    assert ours.costs == sorted(ours.costs, reverse=True)  # Lloyd never increases the cost
    if fixture == "blobs":
        assert ours.metrics["ari"] > 0.95 and ours.metrics["nmi"] > 0.95, ours.metrics
        # MLlib's own k-means|| start (other random draws) ends no better than ours
        parallel = compare.mllib_kmeans(spark, ds, "train", k=k, seed=1, max_iter=100, tol=1e-4)
        assert cost <= 1.01 * parallel["cost"], (cost, parallel)
    else:
        assert ours.metrics["ari"] > 0.4, ours.metrics
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["cost_per_iteration"] == ours.costs and saved["iterations"] == ours.iterations


def test_kmeans_rerun_engines_and_recovery_agree(
    spark: Any, blobs: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = _kmeans(spark, blobs, tmp_path / "a", k=5)
    runs = [
        _kmeans(spark, blobs, tmp_path / "b", k=5),
        _kmeans(spark, blobs, tmp_path / "c", k=5, engine="jobs", partitions=3),
        _kmeans(
            spark, blobs, tmp_path / "d", k=5, fault=BlockFaultConfig(partition=0, iteration=1)
        ),
    ]
    retries = _retried(caplog)
    assert len(retries) == 1 and "injected fault: partition 0 at iteration 1" in retries[0]
    np.testing.assert_array_equal(base.centers, runs[0].centers)
    np.testing.assert_array_equal(base.centers, runs[2].centers)
    assert runs[2].costs == base.costs
    # 3 partitions draw other k-means|| samples and sum in another order: same clustering
    np.testing.assert_allclose(
        np.sort(base.centers, axis=0), np.sort(runs[1].centers, axis=0), atol=1e-4
    )


@pytest.mark.parametrize("job", ["parallel_sgd", "kmeans"])
def test_jobs_engine_task_retry_through_the_job_entry_point(
    python: str, repo: Path, tmp_path: Path, generated: str, blobs: str, job: str
) -> None:
    """spark-submit-style job with local[2,2]: Spark retries the failed task, same model."""
    section, dataset = ("sgd", generated) if job == "parallel_sgd" else ("kmeans", blobs)
    outs = {}
    for name, fault in (("plain", -1), ("fault", 1)):
        outs[name] = tmp_path / name
        cmd = [
            python,
            str(repo / "jobs" / f"{job}.py"),
            "--set",
            "spark.master=local[2,2]",
            "--set",
            "spark.log_level=ERROR",
            "--set",
            f"{section}.dataset={dataset}",
            "--set",
            f"{section}.output={outs[name]}",
            "--set",
            f"{section}.engine=jobs",
            "--set",
            f"{section}.partitions=2",
            "--set",
            f"{section}.fault.partition={fault}",
            *(["--set", "kmeans.k=5"] if section == "kmeans" else []),
            # the comparison table once, with the undisturbed run
            *(["--compare"] if section == "sgd" and fault < 0 else []),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        if fault >= 0:
            assert "injected fault" in done.stderr
    key = "W" if section == "sgd" else "centers"
    with np.load(outs["plain"] / "model.npz") as a, np.load(outs["fault"] / "model.npz") as b:
        np.testing.assert_array_equal(a[key], b[key])
    if section == "sgd":
        table = (outs["plain"] / "compare.md").read_text()
        assert "MLlib LogisticRegression" in table and "scikit-learn" in table
        rows = json.loads((outs["plain"] / "compare.json").read_text())["rows"]
        assert len(rows) == 3 and all(0.5 < r["accuracy"] <= 1.0 for r in rows)
