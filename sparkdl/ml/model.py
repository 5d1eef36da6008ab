"""``KerasModel``: what ``KerasEstimator.fit`` returns; ``transform`` scores with
``pyspark.ml.functions.predict_batch_udf``.

Each Python worker loads the SavedModel once (:func:`sparkdl.serve.predict.load_model`, the
cache ``sparkdl predict`` uses) and scores batches of ``predictBatchSize`` rows; the rows are
first featurized by the featurizer fitted in ``fit`` (:func:`sparkdl.ml.frame.featurized_frame`),
so ``transform`` sees rows exactly as training did.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml import Model
from pyspark.ml.util import MLReadable, MLWritable

from sparkdl.ml.frame import FEATURES, FrameSpec, featurized_frame
from sparkdl.ml.params import ColumnParams

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

    from sparkdl.ml.persist import ModelReader, ModelWriter

logger = logging.getLogger(__name__)

_SCORES = "_sdl_scores"


@dataclass(frozen=True)
class ModelState:
    """A fitted model: where its SavedModel and featurizer are, and what it was fitted on.

    Written and read by :mod:`sparkdl.ml.persist` only (``state.json`` of a saved model).
    """

    model: str
    featurizer: str
    dataset_version: str
    spec: FrameSpec
    history: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float] = field(default_factory=dict)


def make_predict(model_path: str, num_classes: int) -> Callable[[np.ndarray], Any]:
    """``predict_batch_udf``'s ``make_predict_fn``: load the model, return a batch scorer.

    A classification returns ``{"index", "probability"}`` (softmax of the logits); a
    regression returns the model's value.
    """
    import numpy as np

    from sparkdl.serve.predict import class_probabilities, load_model

    model = load_model(model_path)

    def predict(x: np.ndarray) -> Any:
        out = np.asarray(model.predict_on_batch(x.astype(np.float32)))
        if num_classes == 1:
            return out[:, 0].astype(np.float64)
        p = class_probabilities(out)
        return {"index": p.argmax(axis=1).astype(np.int32), "probability": p}

    return predict


class KerasModel(Model, ColumnParams, MLWritable, MLReadable):
    """A Keras model fitted by :class:`~sparkdl.ml.KerasEstimator` (a Spark ML ``Model``).

    ``transform(df)`` keeps every column and row of ``df`` and adds ``predictionCol`` (the
    predicted label, in the label column's type; the value for a regression) and, for a
    classification, ``probabilityCol`` (a vector of class probabilities, in the order of
    :attr:`label_values`).

    Examples
    --------
    >>> model = KerasEstimator(inputCols=["a", "b"], labelCol="y").fit(df)  # doctest: +SKIP
    >>> model.label_values, model.history[-1]["val_accuracy"]  # doctest: +SKIP
    (('0', '1'), 0.97)
    """

    @keyword_only
    def __init__(self, *, state: ModelState | None = None, **kwargs: Any) -> None:
        super().__init__()
        self._state = state
        self._featurizer: PipelineModel | None = None
        params = dict(self._input_kwargs)
        params.pop("state", None)
        self._set(**params)

    @property
    def state(self) -> ModelState:
        """What was fitted (the model, featurizer and input spec)."""
        if self._state is None:
            raise ValueError("this KerasModel holds no fitted model; fit or load one")
        return self._state

    @property
    def label_values(self) -> tuple[str, ...]:
        """The classes, in the order of the probability vector (empty for a regression)."""
        return self.state.spec.label_values

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch training metrics (loss, accuracy or mae, and val_ ones)."""
        return self.state.history

    @property
    def model_path(self) -> str:
        """The SavedModel folder (load it with ``tf.keras.models.load_model``)."""
        return self.state.model

    def featurizer(self) -> PipelineModel:
        """The featurizer fitted on the training rows (loaded once)."""
        if self._featurizer is None:
            from pyspark.ml import PipelineModel

            self._featurizer = PipelineModel.load(self.state.featurizer)
        return self._featurizer

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from pyspark.ml.functions import array_to_vector, predict_batch_udf
        from pyspark.sql import functions as F
        from pyspark.sql.types import (
            ArrayType,
            DoubleType,
            FloatType,
            IntegerType,
            StructField,
            StructType,
        )

        spec = self.state.spec
        rows = featurized_frame(dataset, spec=spec, featurizer=self.featurizer())
        classes = spec.num_classes
        if classes > 1:
            out_type: Any = StructType(
                [
                    StructField("index", IntegerType()),
                    StructField("probability", ArrayType(FloatType())),
                ]
            )
        else:
            out_type = DoubleType()
        scorer = predict_batch_udf(
            functools.partial(make_predict, self.state.model, classes),
            return_type=out_type,
            batch_size=self.getOrDefault(self.predictBatchSize),
            input_tensor_shapes=[[spec.dim]],
        )
        scored = rows.withColumn(_SCORES, scorer(F.col(FEATURES)))
        own = [F.col(f"`{c}`") for c in dataset.columns]
        prediction = self.getOrDefault(self.predictionCol)
        if classes == 1:
            return scored.select(*own, F.col(_SCORES).alias(prediction))
        values = F.array(*[F.lit(v) for v in spec.label_values])
        label = F.element_at(values, F.col(f"{_SCORES}.index") + 1).cast(spec.label_data_type())
        probability = array_to_vector(F.col(f"{_SCORES}.probability"))
        return scored.select(
            *own,
            label.alias(prediction),
            probability.alias(self.getOrDefault(self.probabilityCol)),
        )

    def write(self) -> ModelWriter:
        """A Spark ML writer: the params, the SavedModel and the featurizer, in one folder."""
        from sparkdl.ml.persist import ModelWriter

        return ModelWriter(self)

    @classmethod
    def read(cls) -> ModelReader:
        """A Spark ML reader (``KerasModel.load(path)``; also what ``PipelineModel.load``
        calls for this stage)."""
        from sparkdl.ml.persist import ModelReader

        return ModelReader(cls)
