"""Batch inference on the executors: the Keras model loaded once per Python worker.

Rows go through ``mapInPandas``; each Python worker loads the SavedModel the first time it
needs it and keeps it for the following batches and tasks (Python workers are reused). New raw
data is read, validated and featurized exactly as ``sparkdl prepare`` did for the training
data, with the featurizer fitted then.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdl.config.serve import PredictConfig
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from sparkdl.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)

PREDICTION = "prediction"
PROBABILITY = "probability"
_MODELS: dict[str, Any] = {}


@dataclass(frozen=True)
class ModelInfo:
    """A trained model folder and what ``sparkdl_model.json`` says about it."""

    path: str
    featurizer: str
    dataset_version_path: str
    feature_dim: int
    label_values: list[str]

    @property
    def num_classes(self) -> int:
        """Classes of a classification model (1 for regression)."""
        return max(1, len(self.label_values))


def model_info(spark: SparkSession, *, path: str) -> ModelInfo:
    """Read a trained model folder's card (``sparkdl_model.json``; a path or a store URI)
    through the driver's Hadoop file system, which holds the cluster's credentials.

    Raises
    ------
    BadInputError
        When the folder is not a model written by ``sparkdl train``.

    Examples
    --------
    >>> model_info(spark, path="hdfs://nn:8020/runs/train/model").feature_dim  # doctest: +SKIP
    22
    """
    from sparkdl.store import parse_location
    from sparkdl.store.hadoop import HadoopStore
    from sparkdl.train.card import read_card

    loc = parse_location(path, key="model")
    card = read_card(loc.uri, store=HadoopStore(spark, loc))
    return ModelInfo(
        path=loc.uri,
        featurizer=card.featurizer,
        dataset_version_path=card.featurizer.rsplit("/", 1)[0],
        feature_dim=card.feature_dim,
        label_values=card.label_values,
    )


def load_model(path: str) -> Any:
    """The Keras model at ``path`` (a folder or store URI), loaded once per Python worker."""
    model = _MODELS.get(path)
    if model is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from sparkdl.train.card import local_model

        # a model on a remote store is copied to this node first (TensorFlow reads local files)
        model = tf.keras.models.load_model(local_model(path), compile=False)
        _MODELS[path] = model
    return model


def class_probabilities(logits: Any) -> Any:
    """Softmax of a model's ``(rows, classes)`` logits, as float32 (stable for large logits).

    Examples
    --------
    >>> import numpy as np
    >>> class_probabilities(np.array([[0.0, 0.0], [1000.0, 0.0]])).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    import numpy as np

    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(np.float32)


def predict_batches(
    frames: Iterator[pd.DataFrame], *, model_path: str, num_classes: int, batch_size: int
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: add ``prediction`` and ``probability`` to each pandas batch."""
    import numpy as np

    model = load_model(model_path)
    for frame in frames:
        if frame.empty:
            continue
        x = np.stack(frame["features"].to_numpy()).astype(np.float32)
        out = model.predict(x, batch_size=batch_size, verbose=0)
        frame = frame.copy()
        if num_classes > 1:
            p = class_probabilities(out)
            frame[PREDICTION] = p.argmax(axis=1).astype(np.int32)
            frame[PROBABILITY] = list(p)
        else:
            frame[PREDICTION] = out[:, 0].astype(np.float64)
            frame[PROBABILITY] = [np.zeros(0, dtype=np.float32)] * len(frame)
        yield frame


def predict_frame(df: DataFrame, *, info: ModelInfo, batch_size: int) -> DataFrame:
    """Add ``prediction`` and ``probability`` columns to rows with a ``features`` array."""
    from pyspark.sql.types import (
        ArrayType,
        DoubleType,
        FloatType,
        IntegerType,
        StructField,
        StructType,
    )

    if "features" not in df.columns:
        raise BadInputError(f"input rows have no 'features' column (columns: {df.columns})")
    pred_type = IntegerType() if info.num_classes > 1 else DoubleType()
    schema = StructType(
        [
            *df.schema.fields,
            StructField(PREDICTION, pred_type),
            StructField(PROBABILITY, ArrayType(FloatType())),
        ]
    )
    path, classes = info.path, info.num_classes
    return df.mapInPandas(
        lambda it: predict_batches(it, model_path=path, num_classes=classes, batch_size=batch_size),
        schema,
    )


def featurize_raw(spark: SparkSession, *, raw: Any, dataset: PreparedDataset) -> DataFrame:
    """Read new raw data and featurize it with the dataset's fitted featurizer.

    The input must carry the columns the dataset declared (``prepare.columns``); the label
    column may be left out (new, unlabelled data), and then the result has no ``label``
    column. Rows that fail validation are left out.
    """
    from pyspark.ml import PipelineModel
    from pyspark.sql import functions as F

    from sparkdl.data.featurize import LABEL, apply_featurizer
    from sparkdl.data.sources import read_raw
    from sparkdl.data.validate import REASON, parse_valid, tag_defects

    columns = dataset.manifest.columns
    source = read_raw(spark, source=raw, columns=columns, label_optional=True)
    tagged = tag_defects(source.frame, columns=columns, typed=source.typed)
    valid = parse_valid(tagged.where(F.col(REASON).isNull()), columns=columns)
    keep = (columns.id,) if columns.id else ()
    rows = apply_featurizer(valid, fitted=PipelineModel.load(dataset.featurizer_path), keep=keep)
    if columns.label not in source.input_columns:
        logger.info("input %s has no %r column: predicting without labels", raw.path, columns.label)
        rows = rows.drop(LABEL)
    return rows


@dataclass(frozen=True)
class PredictResult:
    """Where the predictions went."""

    output: str
    rows: int
    seconds: float


def run_predict(spark: SparkSession, *, cfg: PredictConfig) -> PredictResult:
    """Write predictions for a prepared split or new raw data as Parquet to ``cfg.output``."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.data.fs import HadoopFS
    from sparkdl.store.check import check_output

    start = time.perf_counter()
    info = model_info(spark, path=cfg.model)
    dataset = open_dataset(spark, cfg.dataset or info.dataset_version_path)
    if cfg.raw is not None:
        rows = featurize_raw(spark, raw=cfg.raw, dataset=dataset)
    else:
        rows = dataset.read(spark, cfg.split)
    # the executors write the predictions: a location only the driver sees is refused first
    loc = check_output(spark, cfg.output, key="predict.output")
    out = HadoopFS(spark).qualify(loc.uri)
    predict_frame(rows, info=info, batch_size=cfg.batch_size).write.mode("overwrite").parquet(out)
    count = spark.read.parquet(out).count()
    return PredictResult(output=out, rows=count, seconds=time.perf_counter() - start)
