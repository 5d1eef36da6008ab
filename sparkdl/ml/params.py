"""The Spark ML params of :class:`~sparkdl.ml.KerasEstimator` and :class:`~sparkdl.ml.KerasModel`.

Columns are shared by both (``featuresCol`` or ``inputCols``, ``labelCol``, ``predictionCol``,
``probabilityCol``, ``predictBatchSize``); the training params belong to the estimator alone
and map one to one onto the ``train`` and ``launch`` sections of a sparkdl config, so that
they are checked by the same rules (:func:`train_configs`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters

from sparkdl.errors import BadInputError

MODEL_KINDS = ("mlp", "cnn")


def _param(name: str, doc: str, convert: Callable[[Any], Any]) -> Param[Any]:
    """A Spark ML param of the shared classes (``Params._dummy()`` parent, as Spark ML's own)."""
    return Param(Params._dummy(), name, doc, typeConverter=convert)


def _model_value(value: Any) -> Any:
    """A built-in model kind (``mlp``, ``cnn``) or a callable ``(input_dim, num_classes)``."""
    if callable(value):
        return value
    if isinstance(value, str) and value in MODEL_KINDS:
        return value
    raise TypeError(
        f"model={value!r}: give 'mlp', 'cnn' or a function (input_dim, num_classes) -> "
        "tf.keras.Model"
    )


def _plain_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{value!r} is not a dict with string keys")
    return dict(value)


def _optional_string(value: Any) -> str | None:
    return None if value is None else TypeConverters.toString(value)


class ColumnParams(Params):
    """Which columns hold the features, the label and the outputs."""

    featuresCol: Param[str] = _param(  # noqa: N815 (Spark ML's param names)
        "featuresCol",
        "a vector or numeric-array column of features (ignored when inputCols is set)",
        TypeConverters.toString,
    )
    inputCols: Param[list[str]] = _param(  # noqa: N815
        "inputCols",
        "numeric feature columns, instead of one vector column",
        TypeConverters.toListString,
    )
    labelCol: Param[str] = _param(  # noqa: N815
        "labelCol",
        "the label column",
        TypeConverters.toString,
    )
    predictionCol: Param[str] = _param(  # noqa: N815
        "predictionCol",
        "output: the predicted label (classification, in the label column's type) or value",
        TypeConverters.toString,
    )
    probabilityCol: Param[str] = _param(  # noqa: N815
        "probabilityCol",
        "output: class probabilities as a vector (classification)",
        TypeConverters.toString,
    )
    predictBatchSize: Param[int] = _param(  # noqa: N815
        "predictBatchSize",
        "rows per model call in transform (predict_batch_udf's batch_size)",
        TypeConverters.toInt,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            featuresCol="features",
            labelCol="label",
            predictionCol="prediction",
            probabilityCol="probability",
            predictBatchSize=1024,
        )

    def feature_columns(self) -> tuple[str | None, tuple[str, ...]]:
        """``(vector column, ())`` or ``(None, input columns)``: where the features are."""
        if self.isSet(self.inputCols) and self.getOrDefault(self.inputCols):
            return None, tuple(self.getOrDefault(self.inputCols))
        return self.getOrDefault(self.featuresCol), ()


class TrainingParams(Params):
    """What to train and how: the estimator's own params."""

    model: Param[Any] = _param(
        "model",
        "'mlp', 'cnn', or a function (input_dim, num_classes) -> tf.keras.Model of logits",
        _model_value,
    )
    modelOptions: Param[dict[str, Any]] = _param(  # noqa: N815
        "modelOptions",
        "train.model keys for a built-in model: hidden, depth, dropout, image_shape, filters, head",
        _plain_dict,
    )
    task: Param[str] = _param("task", "classification or regression", TypeConverters.toString)
    maxClasses: Param[int] = _param(  # noqa: N815
        "maxClasses",
        "most distinct label values a classification accepts (the label column is refused above)",
        TypeConverters.toInt,
    )
    epochs: Param[int] = _param("epochs", "training epochs", TypeConverters.toInt)
    batchSize: Param[int] = _param(  # noqa: N815
        "batchSize",
        "rows per rank per step",
        TypeConverters.toInt,
    )
    learningRate: Param[float] = _param(  # noqa: N815
        "learningRate",
        "the learning rate of one rank (scaled by the ranks unless trainOptions says scale_lr: false)",
        TypeConverters.toFloat,
    )
    optimizer: Param[str] = _param("optimizer", "adam, sgd or rmsprop", TypeConverters.toString)
    numWorkers: Param[int] = _param(  # noqa: N815
        "numWorkers",
        "Horovod ranks, one Spark barrier task each",
        TypeConverters.toInt,
    )
    mode: Param[str] = _param(
        "mode", "sync, accumulate or local_sgd (train.mode)", TypeConverters.toString
    )
    compression: Param[str] = _param(
        "compression", "none, fp16, topk or powersgd (train.compression)", TypeConverters.toString
    )
    validationFraction: Param[float] = _param(  # noqa: N815
        "validationFraction",
        "share of the rows held out for per-epoch validation metrics (0 for none)",
        TypeConverters.toFloat,
    )
    seed: Param[int] = _param("seed", "seed of weights and shuffling", TypeConverters.toInt)
    trainOptions: Param[dict[str, Any]] = _param(  # noqa: N815
        "trainOptions",
        "other train keys (sparkdl config --describe train), e.g. {'local_sgd_period': 4}",
        _plain_dict,
    )
    launchOptions: Param[dict[str, Any]] = _param(  # noqa: N815
        "launchOptions",
        "launch keys (sparkdl config --describe launch), e.g. {'start_timeout_s': 120}",
        _plain_dict,
    )
    cacheDir: Param[str | None] = _param(  # noqa: N815
        "cacheDir",
        "where fit writes the rows for the ranks and the models, on storage every executor "
        "reaches (default: the Spark conf sparkdl.ml.cacheDir, else a local temporary folder)",
        _optional_string,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            model="mlp",
            modelOptions={},
            task="classification",
            maxClasses=100,
            epochs=5,
            batchSize=256,
            learningRate=0.001,
            optimizer="adam",
            numWorkers=2,
            mode="sync",
            compression="none",
            validationFraction=0.1,
            seed=42,
            trainOptions={},
            launchOptions={},
            cacheDir=None,
        )

    def model_function(self) -> Callable[..., Any] | None:
        """The user's model function, or None for a built-in kind."""
        value = self.getOrDefault(self.model)
        return value if callable(value) else None


# train keys that have a param of their own, or that fit sets itself
_OWN_TRAIN_KEYS = {
    "epochs": "epochs",
    "batch_size": "batchSize",
    "learning_rate": "learningRate",
    "optimizer": "optimizer",
    "mode": "mode",
    "compression": "compression",
    "seed": "seed",
}
_FIT_SETS = ("dataset", "output", "model")


def train_configs(params: TrainingParams, *, dataset: str, output: str) -> tuple[Any, Any]:
    """The ``TrainConfig`` and ``LaunchConfig`` that ``params`` ask for, checked by the config
    rules (a value out of bounds is refused naming the param and the allowed values).

    Examples
    --------
    >>> from sparkdl.ml import KerasEstimator
    >>> train, launch = train_configs(KerasEstimator(epochs=3, numWorkers=1), dataset="d",
    ...                               output="o")
    >>> train.epochs, train.model.kind, launch.num_workers
    (3, 'mlp', 1)
    """
    from sparkdl.config.loader import load_section
    from sparkdl.config.schema import LaunchConfig
    from sparkdl.config.train import TrainConfig

    extra = params.getOrDefault(params.trainOptions)
    clash = sorted(set(extra) & {*_OWN_TRAIN_KEYS, *_FIT_SETS})
    if clash:
        own = [_OWN_TRAIN_KEYS.get(k, "model/modelOptions") for k in clash]
        raise BadInputError(
            f"trainOptions sets {clash}, which the estimator's own params {own} set; use those"
        )
    fn = params.model_function()
    options = dict(params.getOrDefault(params.modelOptions))
    if fn is not None:
        name = f"{getattr(fn, '__module__', 'fn')}:{getattr(fn, '__qualname__', 'model')}"
        model = {"kind": "custom", "function": name}
    else:
        model = {**options, "kind": params.getOrDefault(params.model)}
    data = {
        **extra,
        **{key: params.getOrDefault(params.getParam(p)) for key, p in _OWN_TRAIN_KEYS.items()},
        "dataset": dataset,
        "output": output,
        "model": model,
    }
    train = load_section(TrainConfig, data, source="KerasEstimator params (train)")
    launch = load_section(
        LaunchConfig,
        {
            **params.getOrDefault(params.launchOptions),
            "num_workers": params.getOrDefault(params.numWorkers),
        },
        source="KerasEstimator params (launch)",
    )
    return train, launch
