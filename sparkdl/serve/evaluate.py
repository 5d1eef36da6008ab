"""Distributed evaluation of a trained model: predictions on the executors, metrics by Spark.

Classification takes one Spark job for the confusion matrix, each ``(label, prediction)`` cell
with its count and summed log loss (classes x classes rows, from which rows, accuracy and log
loss follow), and for binary tasks one more for ROC AUC (MLlib's
``BinaryClassificationEvaluator`` on the positive-class probability). Nothing row-sized reaches
the driver.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkdl.config.serve import EvaluateConfig
from sparkdl.errors import BadInputError
from sparkdl.files import json_bytes
from sparkdl.serve.predict import PREDICTION, PROBABILITY, model_info, predict_frame
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

_EPS = 1e-15


@dataclass
class EvalResult:
    """Metrics of one evaluation and where they were written."""

    metrics: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    output: str = ""


def classification_metrics(pred: DataFrame, *, num_classes: int) -> dict[str, Any]:
    """Accuracy, log loss, confusion matrix and (binary) ROC AUC of a predictions frame.

    ``pred`` needs integer ``label`` and ``prediction`` columns and a ``probability`` array.
    """
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    p_true = F.element_at(F.col(PROBABILITY), F.col("label").cast("int") + 1)
    # One job: the confusion cells carry their summed log loss; rows, accuracy and log loss
    # follow from the (classes x classes) cells on the driver.
    cells = (
        pred.groupBy("label", PREDICTION)
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.sum(-F.log(F.greatest(p_true.cast("double"), F.lit(_EPS)))).alias("loss"),
        )
        .collect()
    )
    confusion = [[0] * num_classes for _ in range(num_classes)]
    loss = 0.0
    for c in sorted(cells, key=lambda c: (int(c["label"]), int(c[PREDICTION]))):
        confusion[int(c["label"])][int(c[PREDICTION])] = int(c["count"])
        loss += float(c["loss"] or 0.0)
    rows = sum(map(sum, confusion))
    out: dict[str, Any] = {
        "rows": rows,
        "accuracy": sum(confusion[i][i] for i in range(num_classes)) / rows if rows else 0.0,
        "log_loss": loss / rows if rows else 0.0,
        "confusion_matrix": confusion,
    }
    if num_classes == 2:
        scored = pred.select(
            F.col("label").cast("double").alias("label"),
            F.element_at(F.col(PROBABILITY), 2).cast("double").alias("score"),
        )
        out["roc_auc"] = float(
            BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label").evaluate(
                scored
            )
        )
    return out


def regression_metrics(pred: DataFrame) -> dict[str, Any]:
    """RMSE and MAE of a regression model's predictions."""
    from pyspark.sql import functions as F

    err = F.col(PREDICTION) - F.col("label")
    row = pred.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.avg(F.abs(err)).alias("mae"),
    ).first()
    return {"rows": int(row["rows"]), "rmse": float(row["rmse"]), "mae": float(row["mae"])}


def run_evaluate(spark: SparkSession, *, cfg: EvaluateConfig) -> EvalResult:
    """Score ``cfg.model`` on one split; write ``metrics.json`` (and the predictions) to
    ``cfg.output``.

    Examples
    --------
    >>> run_evaluate(spark, cfg=EvaluateConfig(model="runs/train/model")).metrics["accuracy"]
    ... # doctest: +SKIP
    0.9008
    """
    from sparkdl.lock import output_lock

    # one writer per evaluate.output: a second evaluation into it is refused (exit 2)
    with output_lock(cfg.output, what="evaluate.output", spark=spark):
        return _evaluate_locked(spark, cfg=cfg)


def _evaluate_locked(spark: SparkSession, *, cfg: EvaluateConfig) -> EvalResult:
    """:func:`run_evaluate` with ``evaluate.output`` locked."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.data.fs import HadoopFS

    start = time.perf_counter()
    info = model_info(spark, path=cfg.model)
    dataset = open_dataset(spark, cfg.dataset or info.dataset_version_path)
    if dataset.feature_dim != info.feature_dim:
        raise BadInputError(
            f"{cfg.model} expects {info.feature_dim} features but {dataset.path} has "
            f"{dataset.feature_dim}; evaluate on the dataset it was trained on"
        )
    # metrics.json from the driver, predictions from the executors: every node must reach it
    loc = check_output(spark, cfg.output, key="evaluate.output")
    out = HadoopStore(spark, loc)
    pred = predict_frame(dataset.read(spark, cfg.split), info=info, batch_size=cfg.batch_size)
    if cfg.write_predictions:
        target = HadoopFS(spark).qualify(loc.child("predictions").uri)
        pred.write.mode("overwrite").parquet(target)
        pred = spark.read.parquet(target)
    else:
        pred = pred.cache()
    if info.num_classes > 1:
        metrics = classification_metrics(pred, num_classes=info.num_classes)
    else:
        metrics = regression_metrics(pred)
    seconds = time.perf_counter() - start
    out.write_bytes(
        "metrics.json",
        json_bytes(
            {
                "model": info.path,
                "dataset": dataset.path,
                "split": cfg.split,
                "metrics": metrics,
                "seconds": seconds,
            }
        ),
    )
    logger.info("evaluated %s on %s/%s: %s", info.path, dataset.path, cfg.split, metrics)
    return EvalResult(metrics=metrics, rows=metrics["rows"], seconds=seconds, output=loc.uri)
