"""``KerasEstimator``: a Spark ML estimator that trains a Keras model on Horovod ranks.

``fit(df)`` checks the DataFrame, has ``sparkdl prepare`` write it in the layout the ranks read
(balanced Parquet row groups, a featurizer fitted on it, a validation split), cached by the
DataFrame's plan as petastorm's Spark converter caches (a second fit on the same DataFrame
reuses the rows written by the first), then trains with the launcher ``sparkdl train`` uses:
barrier tasks, checkpoints, retries, the training modes. The :class:`KerasModel` it returns
scores rows with ``pyspark.ml.functions.predict_batch_udf``.

Both work inside a ``pyspark.ml.Pipeline`` (after feature stages such as ``VectorAssembler``),
with ``CrossValidator`` and ``ParamGridBuilder``, and save and load as Spark ML stages do.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml import Estimator
from pyspark.ml.util import MLReadable, MLWritable

from sparkdl.errors import BadInputError
from sparkdl.ml.frame import check_frame, staged_frame
from sparkdl.ml.model import KerasModel, ModelState
from sparkdl.ml.params import ColumnParams, TrainingParams, train_configs
from sparkdl.ml.persist import EstimatorReader, EstimatorWriter

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

CACHE_CONF = "sparkdl.ml.cacheDir"


class KerasEstimator(Estimator, ColumnParams, TrainingParams, MLWritable, MLReadable):
    """Train a Keras model on ``numWorkers`` Horovod ranks from a DataFrame (Spark ML).

    Every param is keyword-only; see ``explainParams()``. The features are a vector column
    (``featuresCol``, e.g. from ``VectorAssembler``) or numeric columns (``inputCols``); the
    label is any numeric or string column for a classification (its classes come from the
    data, at most ``maxClasses``), a numeric one for a regression. The model is ``'mlp'``,
    ``'cnn'`` (with ``modelOptions``) or your function ``(input_dim, num_classes)`` returning a
    ``tf.keras.Model`` whose output is ``num_classes`` logits; the ranks compile it with
    Horovod's ``DistributedOptimizer`` and train it as ``sparkdl train`` does.

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> from pyspark.ml.feature import VectorAssembler
    >>> est = KerasEstimator(featuresCol="v", labelCol="y", epochs=3, numWorkers=2)
    >>> est.getOrDefault("epochs"), est.getOrDefault("batchSize")
    (3, 256)
    >>> assembler = VectorAssembler(inputCols=["a", "b"], outputCol="v")  # doctest: +SKIP
    >>> pipe = Pipeline(stages=[assembler, est])  # doctest: +SKIP
    >>> model = pipe.fit(df)  # doctest: +SKIP
    >>> model.transform(df).select("y", "prediction", "probability").show()  # doctest: +SKIP
    """

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> KerasEstimator:  # noqa: N802 (Spark ML's name)
        """Set params by name; returns self."""
        return self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> KerasModel:
        from sparkdl.data.dataset import open_dataset
        from sparkdl.data.prepare import run_prepare
        from sparkdl.train.runner import run_training

        spark = dataset.sparkSession
        cache = cache_dir(spark, self.getOrDefault(self.cacheDir))
        # every param is checked before any Spark job runs
        train, launch = train_configs(self, dataset="pending", output="pending")
        share = self.getOrDefault(self.validationFraction)
        if not 0.0 <= share < 1.0:
            raise BadInputError(
                f"validationFraction={share}: give a share of rows in [0, 1) to hold out for "
                "validation (0 for none)"
            )
        vector_col, input_cols = self.feature_columns()
        spec = check_frame(
            dataset,
            vector_col=vector_col,
            input_cols=input_cols,
            label=self.getOrDefault(self.labelCol),
            task=self.getOrDefault(self.task),
            max_classes=self.getOrDefault(self.maxClasses),
        )
        fn = self.model_function()
        if fn is not None:
            check_model_function(fn, input_dim=spec.dim, num_classes=spec.num_classes)
        staged = staged_frame(dataset, spec)
        prepare_cfg = self._prepare_config(spec, cache, staged, workers=launch.num_workers)
        # fits of one frame at once (CrossValidator's parallelism) share its root: one writes,
        # the others then find it published
        with _root_lock(prepare_cfg.output):
            prepared = run_prepare(spark, cfg=prepare_cfg, frame=staged)
        ds = open_dataset(spark, prepared.root)
        output = f"{cache}/fits/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        train = replace(train, dataset=ds.root, output=output)
        logger.info(
            "fitting %s on %d rows (%s, %s) with %d workers into %s",
            train.model.function if fn is not None else train.model.kind,
            prepared.rows_valid,
            ds.manifest.version,
            "reused" if prepared.skipped else "written",
            launch.num_workers,
            output,
        )
        result = run_training(spark, train=train, launch=launch, model_fn=fn)
        state = ModelState(
            model=result.export_dir,
            featurizer=ds.featurizer_path,
            dataset_version=ds.manifest.version,
            spec=spec,
            history=[dict(h) for h in result.history],
            validation={
                k: v for k, v in (result.history or [{}])[-1].items() if k.startswith("val_")
            },
        )
        model = KerasModel(state=state)
        return self._copyValues(model)

    def _prepare_config(self, spec: Any, cache: str, staged: DataFrame, *, workers: int) -> Any:
        """The ``prepare`` section that writes ``staged`` for ``workers`` ranks, its own root
        per DataFrame plan (a refit of the same plan finds it published and skips the write)."""
        from sparkdl.config.data import (
            ColumnsConfig,
            LayoutConfig,
            PrepareConfig,
            SplitConfig,
        )

        share = self.getOrDefault(self.validationFraction)
        columns = ColumnsConfig(
            label=spec.label,
            task=spec.task,
            label_values=spec.label_values or ("0", "1"),
            numeric=spec.names,
        )
        plan = staged.semanticHash() & 0xFFFFFFFF
        return PrepareConfig(
            columns=columns,
            output=f"{cache}/data/plan-{plan:08x}",
            split=SplitConfig(train=1.0 - share, validation=share, test=0.0),
            layout=LayoutConfig(workers=workers),
            keep_versions=1,
        )

    def write(self) -> EstimatorWriter:
        """A Spark ML writer (``est.write().overwrite().save(path)``; ``est.save(path)``)."""
        return EstimatorWriter(self)

    @classmethod
    def read(cls) -> EstimatorReader:
        """A Spark ML reader (``KerasEstimator.load(path)``)."""
        return EstimatorReader(cls)


_ROOT_LOCKS: dict[str, threading.Lock] = {}
_ROOT_LOCKS_GUARD = threading.Lock()


def _root_lock(root: str) -> threading.Lock:
    """This process's lock for one prepared root (``prepare``'s own lock refuses a second
    writer; fits in threads of one driver wait for each other instead)."""
    with _ROOT_LOCKS_GUARD:
        return _ROOT_LOCKS.setdefault(root, threading.Lock())


def cache_dir(spark: SparkSession, given: str | None) -> str:
    """Where fits write: the ``cacheDir`` param, else the Spark conf ``sparkdl.ml.cacheDir``,
    else a folder in this machine's temporary directory (qualified: ``file:/tmp/...``).

    Examples
    --------
    >>> cache_dir(spark, "hdfs://nn:8020/tmp/sparkdl-ml")  # doctest: +SKIP
    'hdfs://nn:8020/tmp/sparkdl-ml'
    """
    from sparkdl.data.fs import HadoopFS
    from sparkdl.store.check import check_output

    path = given or spark.conf.get(CACHE_CONF, None)
    key = "cacheDir" if given else CACHE_CONF
    if not path:
        path = os.path.join(tempfile.gettempdir(), f"sparkdl-ml-{os.getuid()}")
        key = f"cacheDir (unset; {CACHE_CONF} unset too, so the local folder {path})"
    check_output(spark, path, key=key)  # executors must reach it: refused here, with the key
    return HadoopFS(spark).qualify(path).rstrip("/")


def check_model_function(fn: Any, *, input_dim: int, num_classes: int) -> None:
    """Build ``fn``'s model once on the driver and compile it, as every rank will.

    Raises
    ------
    BadInputError
        When ``fn`` raises, returns something that is not a Keras model, or a model whose
        output does not have ``num_classes`` values per row; naming the function and the fix.
    """
    import tensorflow as tf

    from sparkdl.train.models import checked_model

    name = getattr(fn, "__qualname__", repr(fn))
    try:
        model = fn(input_dim=input_dim, num_classes=num_classes)
    except Exception as exc:
        raise BadInputError(
            f"model function {name!r} failed when called as {name}(input_dim={input_dim}, "
            f"num_classes={num_classes}): {type(exc).__name__}: {exc}. It must accept these "
            "two keyword arguments and return a tf.keras.Model"
        ) from exc
    checked_model(model, source=f"model function {name!r}")
    width = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if width != num_classes:
        raise BadInputError(
            f"model function {name!r} returned a model whose output shape is "
            f"{model.output_shape}; it must end in num_classes={num_classes} logits "
            f"(e.g. tf.keras.layers.Dense(num_classes))"
        )
    try:
        model.compile(optimizer="adam", loss=tf.keras.losses.MeanSquaredError())
    except Exception as exc:
        raise BadInputError(
            f"model function {name!r} returned a model that cannot be compiled: {exc}"
        ) from exc
