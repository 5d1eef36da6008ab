"""Spark ML featurization fitted on the training split only, saved for reuse at inference.

Stages: ``Imputer`` (numeric nulls), ``VectorAssembler`` + ``StandardScaler``/``MinMaxScaler`` on
the numeric part, per categorical column either ``StringIndexer`` + ``OneHotEncoder`` (low
cardinality), the bare index, or ``FeatureHasher`` (high cardinality), and a final assembly into
one vector, exported as a fixed-length ``array<float>`` column ``features``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdl.config.data import ColumnsConfig, FeaturizeConfig
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

FEATURES = "features"
LABEL = "label"
UNSEEN = "__unseen__"
_HASHED = "_hashed"


@dataclass(frozen=True)
class FittedFeaturizer:
    """A fitted pipeline and what its output vector means."""

    model: PipelineModel
    feature_names: tuple[str, ...]
    encodings: dict[str, str]

    @property
    def dim(self) -> int:
        """Length of the ``features`` array."""
        return len(self.feature_names)


def choose_encodings(distinct: dict[str, int], *, cfg: FeaturizeConfig) -> dict[str, str]:
    """Pick an encoding per categorical column: the configured one, or by cardinality for auto.

    Examples
    --------
    >>> choose_encodings({"c0": 5, "c1": 5000}, cfg=FeaturizeConfig())
    {'c0': 'onehot', 'c1': 'hash'}
    """
    if cfg.categorical != "auto":
        return dict.fromkeys(distinct, cfg.categorical)
    return {c: ("onehot" if n <= cfg.max_onehot else "hash") for c, n in distinct.items()}


def check_featurizable(*, columns: ColumnsConfig, non_null: Mapping[str, int], rows: int) -> None:
    """Refuse numeric columns without a single value in the training rows.

    ``Imputer`` has nothing to compute a fill value from in such a column (MLlib fails deep in
    the fit), and a column that is always missing carries no information anyway.

    Parameters
    ----------
    columns : ColumnsConfig
    non_null : mapping of str to int
        Non-null values per numeric column in the training split.
    rows : int
        Rows in the training split.

    Raises
    ------
    BadInputError
        Naming every such column and the fix.

    Examples
    --------
    >>> cols = ColumnsConfig(numeric=("x0", "x1"))
    >>> check_featurizable(columns=cols, non_null={"x0": 9, "x1": 0}, rows=9)
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: prepare.columns.numeric column(s) ['x1'] have no value in any of the 9 training rows (every value is empty or null), so there is nothing to impute them from or learn from them. Remove them from prepare.columns.numeric (and list them under prepare.columns.ignore), or fix the data.
    """
    empty = [c for c in columns.numeric if not non_null.get(c)]
    if empty:
        raise BadInputError(
            f"prepare.columns.numeric column(s) {empty} have no value in any of the {rows} "
            "training rows (every value is empty or null), so there is nothing to impute them "
            "from or learn from them. Remove them from prepare.columns.numeric (and list them "
            "under prepare.columns.ignore), or fix the data."
        )


def _non_null_counts(train: DataFrame, columns: ColumnsConfig) -> tuple[dict[str, int], int]:
    """Non-null values per numeric column and the row count, in one pass."""
    from pyspark.sql import functions as F

    row = train.agg(
        F.count(F.lit(1)).alias("|rows"),
        *[F.count(F.col(f"`{c}`")).alias(c) for c in columns.numeric],
    ).first()
    return {c: int(row[c]) for c in columns.numeric}, int(row["|rows"])


def fit_featurizer(
    train: DataFrame,
    *,
    columns: ColumnsConfig,
    cfg: FeaturizeConfig,
    distinct: dict[str, int],
    non_null: Mapping[str, int] | None = None,
    rows: int | None = None,
) -> FittedFeaturizer:
    """Fit the featurization pipeline on the training rows only.

    Parameters
    ----------
    train : DataFrame
        Parsed training rows (see :func:`sparkdl.data.validate.parse_valid`).
    columns : ColumnsConfig
    cfg : FeaturizeConfig
    distinct : dict
        Approximate distinct count per categorical column on the training split.
    non_null, rows : mapping of str to int, int, optional
        Non-null values per numeric column and rows of the training split, when the caller
        already counted them (prepare's statistics do); else one pass counts them.

    Returns
    -------
    FittedFeaturizer

    Raises
    ------
    BadInputError
        A numeric column without any value in the training split
        (:func:`check_featurizable`), before anything is fitted.

    Examples
    --------
    >>> fit = fit_featurizer(train, columns=c, cfg=FeaturizeConfig(), distinct={})  # doctest: +SKIP
    >>> fit.dim  # doctest: +SKIP
    8
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import (
        FeatureHasher,
        Imputer,
        MinMaxScaler,
        OneHotEncoder,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )

    if columns.numeric:
        if non_null is None or rows is None:
            non_null, rows = _non_null_counts(train, columns)
        check_featurizable(columns=columns, non_null=non_null, rows=rows)
    stages: list[Any] = []
    parts: list[str] = []
    encodings = choose_encodings(distinct, cfg=cfg)
    if columns.numeric:
        imputed = [f"_imp_{c}" for c in columns.numeric]
        stages.append(
            Imputer(inputCols=list(columns.numeric), outputCols=imputed, strategy=cfg.impute)
        )
        stages.append(VectorAssembler(inputCols=imputed, outputCol="_num", handleInvalid="error"))
        if cfg.scale == "standard":
            stages.append(
                StandardScaler(inputCol="_num", outputCol="_num_s", withMean=True, withStd=True)
            )
            parts.append("_num_s")
        elif cfg.scale == "minmax":
            stages.append(MinMaxScaler(inputCol="_num", outputCol="_num_s"))
            parts.append("_num_s")
        else:
            parts.append("_num")
    hashed = [c for c in columns.categorical if encodings[c] == "hash"]
    indexed = [c for c in columns.categorical if encodings[c] != "hash"]
    if indexed:
        # One indexer for all columns: one pass over the training split instead of one each.
        stages.append(
            StringIndexer(
                inputCols=indexed,
                outputCols=[f"_idx_{c}" for c in indexed],
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            )
        )
    for c in indexed:
        if encodings[c] == "onehot":
            stages.append(
                # The indexer already maps unseen values to one extra index.
                OneHotEncoder(inputCol=f"_idx_{c}", outputCol=f"_oh_{c}", dropLast=False)
            )
            parts.append(f"_oh_{c}")
        else:
            parts.append(f"_idx_{c}")
    if hashed:
        stages.append(
            FeatureHasher(
                inputCols=hashed,
                outputCol=_HASHED,
                numFeatures=cfg.hash_buckets,
                categoricalCols=hashed,
            )
        )
        parts.append(_HASHED)
    stages.append(VectorAssembler(inputCols=parts, outputCol="_features"))
    model = Pipeline(stages=stages).fit(train)
    names = _feature_names(model, columns=columns, encodings=encodings, buckets=cfg.hash_buckets)
    # The assembled vector's size is in the output schema's ML metadata (no Spark job needed).
    size = model.transform(train).schema["_features"].metadata["ml_attr"]["num_attrs"]
    if size != len(names):
        raise RuntimeError(f"featurizer produces {size} features but names {len(names)}: {names}")
    logger.info(
        "featurizer fitted on the training split: %d features, encodings %s", len(names), encodings
    )
    return FittedFeaturizer(model=model, feature_names=tuple(names), encodings=encodings)


def _feature_names(
    model: PipelineModel, *, columns: ColumnsConfig, encodings: dict[str, str], buckets: int
) -> list[str]:
    from pyspark.ml.feature import StringIndexerModel

    names = list(columns.numeric)
    labels: dict[str, list[str]] = {}
    for m in model.stages:
        if isinstance(m, StringIndexerModel):
            labels.update(zip(m.getInputCols(), (list(x) for x in m.labelsArray), strict=True))
    for c in columns.categorical:
        if encodings[c] == "onehot":
            names.extend([f"{c}={v}" for v in labels[c]] + [f"{c}={UNSEEN}"])
        elif encodings[c] == "index":
            names.append(f"{c}#index")
    if any(e == "hash" for e in encodings.values()):
        names.extend(f"hash[{i}]" for i in range(buckets))
    return names


def apply_featurizer(
    df: DataFrame, *, fitted: FittedFeaturizer | PipelineModel, keep: tuple[str, ...] = ()
) -> DataFrame:
    """Return ``keep`` columns, ``features`` (``array<float>``) and ``label`` for parsed rows.

    Examples
    --------
    >>> apply_featurizer(parsed, fitted=fit, keep=("id",)).columns  # doctest: +SKIP
    ['id', 'features', 'label']
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    model = fitted.model if isinstance(fitted, FittedFeaturizer) else fitted
    out = model.transform(df)
    return out.select(
        *[F.col(f"`{k}`") for k in keep],
        vector_to_array(F.col("_features"), "float32").alias(FEATURES),
        F.col("_label").alias(LABEL),
    )
