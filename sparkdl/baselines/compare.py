"""``--compare``: Spark MLlib and scikit-learn on the same prepared data, side by side.

MLlib reads the split through Spark (``ml.classification.LogisticRegression``,
``ml.clustering.KMeans`` with k-means||, and the RDD-based ``mllib.clustering.KMeans`` started
from our initial centres, the only MLlib k-means that accepts given centres). scikit-learn
needs the data in one process: the comparison reads the split's Parquet files into the driver
with pyarrow, which is the point of that baseline, so keep ``--compare`` to data that fits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.baselines.blocks import Slice, read_slices
from sparkdl.errors import BadInputError
from sparkdl.files import json_bytes
from sparkdl.store import Store
from sparkdl.store.hadoop import HadoopStore

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sparkdl.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)


def local_split(dataset: PreparedDataset, split: str) -> tuple[Any, Any]:
    """Read a whole split into ``(features, labels)`` numpy arrays on the driver."""
    base = dataset.split_path(split)
    slices = [Slice(f"{base}/{f.name}", 0, f.rows) for f in dataset.split(split).files]
    label_dtype = "float64" if dataset.task == "regression" else "int64"
    return read_slices(slices, dim=dataset.feature_dim, label_dtype=label_dtype)


def vectors(spark: SparkSession, dataset: PreparedDataset, split: str) -> DataFrame:
    """A split as MLlib wants it: ``features`` as a Vector, ``label`` as a double."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    df = dataset.read(spark, split)
    return df.select(
        array_to_vector("features").alias("features"), F.col("label").cast("double").alias("label")
    )


def mllib_logistic(
    spark: SparkSession, dataset: PreparedDataset, *, l2: float, max_iter: int = 100
) -> dict[str, float]:
    """Fit MLlib's LogisticRegression on train; accuracy and log loss on test."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator

    start = time.perf_counter()
    model = LogisticRegression(maxIter=max_iter, regParam=l2, elasticNetParam=0.0).fit(
        vectors(spark, dataset, "train")
    )
    fit_s = time.perf_counter() - start
    pred = model.transform(vectors(spark, dataset, "test")).cache()
    ev = MulticlassClassificationEvaluator(labelCol="label")
    out = {
        "accuracy": ev.evaluate(pred, {ev.metricName: "accuracy"}),
        "log_loss": ev.evaluate(pred, {ev.metricName: "logLoss"}),
        "wall_s": fit_s,
        "iterations": float(model.summary.totalIterations),
    }
    pred.unpersist()
    return out


def sklearn_logistic(dataset: PreparedDataset, *, l2: float) -> dict[str, float]:
    """Fit scikit-learn's LogisticRegression (lbfgs) with the same L2 strength."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss

    x, y = local_split(dataset, "train")
    xt, yt = local_split(dataset, "test")
    start = time.perf_counter()
    # MLlib and ParallelSGD minimise mean loss + l2/2 |w|^2; sklearn sums the loss: C = 1/(n l2).
    c = 1.0 / (len(y) * l2) if l2 > 0 else 1e12
    model = LogisticRegression(C=c, max_iter=1000).fit(x, y)
    wall = time.perf_counter() - start
    return {
        "accuracy": float(accuracy_score(yt, model.predict(xt))),
        "log_loss": float(log_loss(yt, model.predict_proba(xt), labels=model.classes_)),
        "wall_s": wall,
    }


def mllib_kmeans_same_init(
    spark: SparkSession,
    dataset: PreparedDataset,
    split: str,
    *,
    init: Any,
    max_iter: int | Sequence[int],
    tol: float,
) -> Any:
    """RDD-based MLlib k-means started from ``init``: ``{"cost", "wall_s"}`` after ``max_iter``
    iterations, or a list of them for a sequence of iteration limits (one cached input for all
    fits, as for a cost-per-iteration curve)."""
    from pyspark.mllib.clustering import KMeans, KMeansModel

    rdd = (
        dataset.read(spark, split)
        .select("features")
        .rdd.map(lambda r: np.asarray(r[0], dtype=np.float64))
    )
    rdd.cache().count()
    out = []
    for limit in [max_iter] if isinstance(max_iter, int) else max_iter:
        start = time.perf_counter()
        model = KMeans.train(
            rdd,
            len(init),
            maxIterations=limit,
            epsilon=tol,
            initialModel=KMeansModel([np.asarray(c) for c in init]),
        )
        wall = time.perf_counter() - start
        out.append({"cost": float(model.computeCost(rdd)), "wall_s": wall})
    rdd.unpersist()
    return out[0] if isinstance(max_iter, int) else out


def mllib_kmeans(
    spark: SparkSession,
    dataset: PreparedDataset,
    split: str,
    *,
    k: int,
    seed: int,
    max_iter: int,
    tol: float,
) -> dict[str, float]:
    """DataFrame MLlib KMeans (k-means|| init, same seed); cost, iterations and wall time."""
    from pyspark.ml.clustering import KMeans

    df = vectors(spark, dataset, split).select("features").cache()
    df.count()
    start = time.perf_counter()
    model = KMeans(k=k, seed=seed, maxIter=max_iter, tol=tol).fit(df)
    wall = time.perf_counter() - start
    out = {
        "cost": float(model.summary.trainingCost),
        "iterations": float(model.summary.numIter),
        "wall_s": wall,
    }
    df.unpersist()
    return out


def mllib_kmeans_iteration_s(
    spark: SparkSession,
    dataset: PreparedDataset,
    split: str,
    *,
    k: int,
    seed: int,
    iterations: tuple[int, int] = (3, 13),
) -> float:
    """Seconds per Lloyd iteration of MLlib KMeans: two fits with ``tol=0``, the same seed and
    random init and different ``maxIter``; the time difference over the difference in
    iterations actually run, so reading, caching and initialisation cancel out."""
    from pyspark.ml.clustering import KMeans

    df = vectors(spark, dataset, split).select("features").cache()
    df.count()
    runs = []
    for n in iterations:
        start = time.perf_counter()
        model = KMeans(k=k, seed=seed, maxIter=n, tol=0.0, initMode="random").fit(df)
        runs.append((time.perf_counter() - start, model.summary.numIter))
    df.unpersist()
    (t1, n1), (t2, n2) = runs
    if n2 <= n1:
        raise BadInputError(
            f"MLlib KMeans converged within {n1} iterations; use harder data (more clusters "
            "than blobs, wider blobs) to time iterations"
        )
    return (t2 - t1) / (n2 - n1)


def sklearn_kmeans(
    dataset: PreparedDataset, split: str, *, init: Any, max_iter: int, tol: float, threads: int
) -> dict[str, float]:
    """scikit-learn KMeans (Lloyd) from ``init`` on ``threads`` cores."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x, _ = local_split(dataset, split)
    with threadpool_limits(limits=threads):
        start = time.perf_counter()
        model = KMeans(
            n_clusters=len(init),
            init=np.asarray(init),
            n_init=1,
            max_iter=max_iter,
            tol=tol,
            algorithm="lloyd",
        ).fit(x)
        wall = time.perf_counter() - start
    return {
        "cost": float(model.inertia_),
        "iterations": float(model.n_iter_),
        "wall_s": wall,
        "seconds_per_iteration": wall / max(model.n_iter_, 1),
    }


def sklearn_kmeans_best(
    dataset: PreparedDataset, split: str, *, k: int, n_init: int, seed: int, threads: int
) -> dict[str, float]:
    """scikit-learn KMeans with its own greedy k-means++ seeding, best of ``n_init`` runs:
    the reference cost for a whole k-means fit on the same features."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x, _ = local_split(dataset, split)
    with threadpool_limits(limits=threads):
        start = time.perf_counter()
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed, algorithm="lloyd").fit(x)
        wall = time.perf_counter() - start
    return {"cost": float(model.inertia_), "iterations": float(model.n_iter_), "wall_s": wall}


@dataclass(frozen=True)
class Comparison:
    """Where a comparison went: ``compare.json`` (rows, and any extra fields) and its table
    ``compare.md``."""

    json: str
    markdown: str


def write_comparison(
    out: Store,
    *,
    title: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> Comparison:
    """Write ``compare.json`` (``title``, ``rows`` and ``extra``) and a Markdown table
    ``compare.md`` to the store ``out``; return their locations."""
    from sparkdl.bench.measure import format_table

    doc = {"title": title, "rows": rows, **(extra or {})}
    out.write_bytes("compare.json", json_bytes(doc))
    body = [[r.get(c, "") for c in columns] for r in rows]
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in body:
        lines.append("| " + " | ".join(_cell(v) for v in r) + " |")
    out.write_bytes("compare.md", ("\n".join(lines) + "\n").encode())
    logger.info("comparison:\n%s", format_table(columns, body))
    return Comparison(
        json=out.location.child("compare.json").uri, markdown=out.location.child("compare.md").uri
    )


def reference_row(doc: dict[str, Any] | None, method: str) -> dict[str, Any] | None:
    """The row of a ``compare.json`` document whose method starts with ``method``, or None.

    Examples
    --------
    >>> reference_row({"rows": [{"method": "MLlib KMeans", "cost": 2.0}]}, "MLlib")["cost"]
    2.0
    """
    for row in (doc or {}).get("rows", []):
        if str(row.get("method", "")).startswith(method):
            return row
    return None


def _cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.6g}"
    return str(v)


MLLIB_LOGISTIC = "MLlib LogisticRegression"


def compare_sgd(spark: SparkSession, *, cfg: Any, result: Any, sklearn: bool = True) -> Comparison:
    """ParallelSGD's result next to MLlib's and (with ``sklearn``, on the driver)
    scikit-learn's logistic regression, in the sgd output's ``compare.json``/``compare.md``."""
    from sparkdl.data.dataset import open_dataset

    ds = open_dataset(spark, cfg.dataset)
    if result.kind == "linear":
        raise BadInputError("--compare covers classification (logistic/softmax) only for sgd")
    rows = [
        {
            "method": f"ParallelSGD {cfg.mode} ({result.partitions} partitions, {cfg.epochs} epochs)",
            "accuracy": result.test.get("accuracy", float("nan")),
            "log_loss": result.test.get("log_loss", float("nan")),
            "wall_s": result.wall_s,
        },
        {"method": f"{MLLIB_LOGISTIC} (L-BFGS)", **mllib_logistic(spark, ds, l2=cfg.l2)},
    ]
    if sklearn:
        rows.append(
            {
                "method": "scikit-learn LogisticRegression (lbfgs, driver)",
                **sklearn_logistic(ds, l2=cfg.l2),
            }
        )
    return write_comparison(
        HadoopStore(spark, result.output),
        title=f"ParallelSGD vs MLlib vs scikit-learn on {ds.path} (test split)",
        columns=["method", "accuracy", "log_loss", "wall_s"],
        rows=rows,
    )


def compare_kmeans(
    spark: SparkSession, *, cfg: Any, result: Any, sklearn: bool = True, cost_iterations: int = 0
) -> Comparison:
    """Our k-means next to MLlib (same initial centres, and k-means||) and, with ``sklearn``
    (on the driver), scikit-learn; with ``cost_iterations``, also MLlib's cost after each of
    the first iterations from the same centres (``mllib_cost_per_iteration``: MLlib does not
    report it, so it is refit for 1..n iterations)."""
    from sparkdl.data.dataset import open_dataset

    ds = open_dataset(spark, cfg.dataset)
    cores = spark.sparkContext.defaultParallelism
    rows = [
        {
            "method": f"sparkdl k-means (best of {result.n_init} k-means|| starts, "
            f"{result.partitions} partitions, {cfg.engine} engine)",
            "cost": result.metrics["cost"],
            "iterations": float(result.iterations),
            "wall_s": result.iterations_s,
        },
        {
            "method": "MLlib mllib.KMeans, same initial centres",
            **mllib_kmeans_same_init(
                spark, ds, cfg.split, init=result.init_centers, max_iter=cfg.max_iter, tol=cfg.tol
            ),
        },
        {
            "method": f"MLlib ml.KMeans, k-means|| seed {cfg.seed}",
            **mllib_kmeans(
                spark, ds, cfg.split, k=cfg.k, seed=cfg.seed, max_iter=cfg.max_iter, tol=cfg.tol
            ),
        },
    ]
    if sklearn:
        rows += _sklearn_kmeans_rows(ds, cfg=cfg, result=result, threads=cores)
    extra = {}
    if cost_iterations:
        limits = range(1, min(cost_iterations, result.iterations) + 1)
        fits = mllib_kmeans_same_init(
            spark, ds, cfg.split, init=result.init_centers, max_iter=limits, tol=0.0
        )
        extra["mllib_cost_per_iteration"] = [fit["cost"] for fit in fits]
    return write_comparison(
        HadoopStore(spark, result.output),
        title=f"k-means (k={cfg.k}) on {ds.path} split {cfg.split}: cost and Lloyd wall time",
        columns=["method", "cost", "iterations", "wall_s"],
        rows=rows,
        extra=extra,
    )


def _sklearn_kmeans_rows(
    ds: PreparedDataset, *, cfg: Any, result: Any, threads: int
) -> list[dict[str, Any]]:
    """scikit-learn's k-means from our centres and its own best of 10 (on the driver)."""
    return [
        {
            "method": f"scikit-learn KMeans, same initial centres, {threads} threads",
            **sklearn_kmeans(
                ds,
                cfg.split,
                init=result.init_centers,
                max_iter=cfg.max_iter,
                tol=cfg.tol,
                threads=threads,
            ),
        },
        {
            "method": f"scikit-learn KMeans, k-means++ best of 10, {threads} threads",
            **sklearn_kmeans_best(
                ds, cfg.split, k=cfg.k, n_init=10, seed=cfg.seed, threads=threads
            ),
        },
    ]
