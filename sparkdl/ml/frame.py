"""What the estimator checks in a DataFrame, and the frame it hands to ``prepare``.

:func:`check_frame` refuses a DataFrame the ranks could not train on (a missing column, a
non-numeric feature, a label with nulls, vectors of varying length, too many classes) with the
param to change, before anything is written. :func:`staged_frame` turns the features into the
numeric columns ``prepare`` declares; :func:`featurized_frame` does the same for new rows and
applies the featurizer fitted then, so ``transform`` scores rows exactly as training saw them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

logger = logging.getLogger(__name__)

# the numeric columns a vector column is spread into (their names in the dataset's manifest)
EXPANDED = "_sdl_f"
FEATURES = "_sdl_features"


@dataclass(frozen=True)
class FrameSpec:
    """What ``fit`` learned about its DataFrame: where the features are, and the label.

    Examples
    --------
    >>> FrameSpec(vector_col="v", input_cols=(), dim=3, label="y", label_type='"double"',
    ...           label_values=("0.0", "1.0"), task="classification").names
    ('_sdl_f0', '_sdl_f1', '_sdl_f2')
    """

    vector_col: str | None
    input_cols: tuple[str, ...]
    dim: int
    label: str
    label_type: str  # the label column's Spark type, as DataType.json()
    label_values: tuple[str, ...]
    task: str

    @property
    def names(self) -> tuple[str, ...]:
        """The numeric columns ``prepare`` declares: the input columns, or the spread vector."""
        return self.input_cols or tuple(f"{EXPANDED}{i}" for i in range(self.dim))

    @property
    def num_classes(self) -> int:
        """Classes (1 for regression)."""
        return len(self.label_values) if self.task == "classification" else 1

    def label_data_type(self) -> DataType:
        """The label column's Spark type."""
        import json

        from pyspark.sql.types import _parse_datatype_json_value

        return _parse_datatype_json_value(json.loads(self.label_type))


def _numeric(dt: DataType) -> bool:
    from pyspark.sql.types import DecimalType, NumericType

    return isinstance(dt, NumericType | DecimalType)


def _vector_kind(dt: DataType) -> str | None:
    """``vector`` for a Spark ML vector, ``array`` for a numeric array, else None."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import ArrayType

    if isinstance(dt, VectorUDT):
        return "vector"
    if isinstance(dt, ArrayType) and _numeric(dt.elementType):
        return "array"
    return None


def check_columns(
    df: DataFrame, *, vector_col: str | None, input_cols: tuple[str, ...], label: str | None
) -> None:
    """Refuse missing columns and wrong types, naming the param to set (no Spark job).

    Raises
    ------
    BadInputError
        A column that is not there, a feature that is not numeric (or a vector of numbers).
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    wanted = [("inputCols", c) for c in input_cols] or [("featuresCol", vector_col or "")]
    if label is not None:
        wanted.append(("labelCol", label))
    for param, name in wanted:
        if name not in types:
            raise BadInputError(
                f"{param}={name!r}: the DataFrame has no such column (its columns: "
                f"{list(types)}); set {param} to one of them"
            )
    if vector_col is not None and _vector_kind(types[vector_col]) is None:
        raise BadInputError(
            f"featuresCol={vector_col!r} is {types[vector_col].simpleString()}; it must be a "
            "vector (e.g. from VectorAssembler) or an array of numbers, or set inputCols to "
            "numeric columns instead"
        )
    wrong = [f"{c} ({types[c].simpleString()})" for c in input_cols if not _numeric(types[c])]
    if wrong:
        raise BadInputError(
            f"inputCols holds columns that are not numeric: {wrong}; cast them, or encode them "
            "first (StringIndexer, OneHotEncoder and VectorAssembler in a Pipeline)"
        )


def _array(df: DataFrame, name: str) -> Column:
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    col = F.col(f"`{name}`")
    return vector_to_array(col) if _vector_kind(df.schema[name].dataType) == "vector" else col


def check_frame(
    df: DataFrame,
    *,
    vector_col: str | None,
    input_cols: tuple[str, ...],
    label: str,
    task: str,
    max_classes: int,
) -> FrameSpec:
    """Check the training DataFrame and learn its shape: one aggregation, one bounded distinct.

    Raises
    ------
    BadInputError
        See :func:`check_columns`; then no rows, a label with nulls, a vector column with nulls
        or of varying length, a regression label that is not numeric, fewer than 2 or more
        than ``max_classes`` label values. Each names the column and the fix.
    """
    from pyspark.sql import functions as F

    check_columns(df, vector_col=vector_col, input_cols=input_cols, label=label)
    label_dt = df.schema[label].dataType
    if task == "regression" and not _numeric(label_dt):
        raise BadInputError(
            f"labelCol={label!r} is {label_dt.simpleString()}; a regression label must be "
            "numeric (or set task='classification')"
        )
    lab = F.col(f"`{label}`")
    aggs = [F.count(F.lit(1)).alias("rows"), F.count(F.when(lab.isNull(), 1)).alias("nulls")]
    if vector_col is not None:
        size = F.size(_array(df, vector_col))
        aggs += [
            F.min(size).alias("lo"),
            F.max(size).alias("hi"),
            F.count(F.when(F.col(f"`{vector_col}`").isNull(), 1)).alias("vnulls"),
        ]
    got = df.agg(*aggs).first()
    if not got["rows"]:
        raise BadInputError("the DataFrame has no rows; nothing to fit")
    if got["nulls"]:
        raise BadInputError(
            f"labelCol={label!r} is null in {got['nulls']} of {got['rows']} rows; drop or fill "
            f"them first, e.g. df.na.drop(subset=[{label!r}])"
        )
    dim = len(input_cols)
    if vector_col is not None:
        if got["vnulls"]:
            raise BadInputError(
                f"featuresCol={vector_col!r} is null in {got['vnulls']} rows; drop them first, "
                f"e.g. df.na.drop(subset=[{vector_col!r}])"
            )
        if got["lo"] != got["hi"] or not got["hi"]:
            raise BadInputError(
                f"featuresCol={vector_col!r} holds vectors of length {got['lo']} to {got['hi']}; "
                "every row needs the same, non-zero length (check the stages that build it)"
            )
        dim = int(got["hi"])
    values = label_values(df, label=label, max_classes=max_classes) if task != "regression" else ()
    spec = FrameSpec(
        vector_col=vector_col,
        input_cols=input_cols,
        dim=dim,
        label=label,
        label_type=label_dt.json(),
        label_values=values,
        task=task,
    )
    logger.info(
        "fit input: %d rows, %d features from %s, label %r%s",
        got["rows"],
        dim,
        vector_col or list(input_cols),
        label,
        f" with classes {list(values)}" if values else "",
    )
    return spec


def label_values(df: DataFrame, *, label: str, max_classes: int) -> tuple[str, ...]:
    """The label's distinct values in prepare's order (:func:`sparkdl.data.infer_rules.
    label_values_from`: by number when all are numbers, ``1`` and ``1.0`` one class), read with
    a bounded job: at most ``max_classes + 1`` values reach the driver.

    Raises
    ------
    BadInputError
        Fewer than 2 values, or more than ``max_classes`` (naming the column and the fix).
    """
    from pyspark.sql import functions as F

    from sparkdl.data.infer_rules import label_values_from

    text = F.col(f"`{label}`").cast("string").alias("v")
    rows = df.select(text).distinct().limit(max_classes + 1).collect()
    found = label_values_from(r["v"] for r in rows)
    if len(found) > max_classes:
        raise BadInputError(
            f"labelCol={label!r} has more than maxClasses={max_classes} distinct values; for a "
            "numeric target set task='regression', else raise maxClasses"
        )
    if len(found) < 2:
        raise BadInputError(
            f"labelCol={label!r} has {len(found)} distinct value(s) {list(found)}; a "
            "classification needs at least two"
        )
    return found


def _spread(df: DataFrame, spec: FrameSpec) -> list[Column]:
    """The vector column as ``dim`` numeric columns; a row of another length fails its task."""
    from pyspark.sql import functions as F

    if spec.vector_col is None:
        raise ValueError("_spread needs a vector column")
    arr = _array(df, spec.vector_col)
    checked = F.when(F.size(arr) == spec.dim, arr).otherwise(
        F.raise_error(
            F.concat(
                F.lit(f"featuresCol={spec.vector_col!r}: a row's vector has length "),
                F.size(arr).cast("string"),
                F.lit(f", the model was fitted on length {spec.dim}"),
            )
        )
    )
    return [checked[i].cast("double").alias(name) for i, name in enumerate(spec.names)]


def staged_frame(df: DataFrame, spec: FrameSpec) -> DataFrame:
    """The rows ``prepare`` reads: the declared numeric columns and the label (a pure
    transform).

    Examples
    --------
    >>> staged_frame(df, spec).columns  # doctest: +SKIP
    ['_sdl_f0', '_sdl_f1', 'label']
    """
    from pyspark.sql import functions as F

    features = (
        _spread(df, spec)
        if spec.vector_col is not None
        else [F.col(f"`{c}`") for c in spec.input_cols]
    )
    return df.select(*features, F.col(f"`{spec.label}`"))


def featurized_frame(df: DataFrame, *, spec: FrameSpec, featurizer: PipelineModel) -> DataFrame:
    """``df``'s own columns plus :data:`FEATURES`, the featurizer's output for each row (a
    pure transform; every row is kept, a null feature is imputed as in training).

    Raises
    ------
    BadInputError
        When a feature column is missing or of the wrong type (no Spark job).
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    check_columns(df, vector_col=spec.vector_col, input_cols=spec.input_cols, label=None)
    own = [F.col(f"`{c}`") for c in df.columns]
    inputs = df.select(*own, *_spread(df, spec)) if spec.vector_col is not None else df
    out = featurizer.transform(inputs)
    return out.select(*own, vector_to_array(F.col("_features"), "float32").alias(FEATURES))
