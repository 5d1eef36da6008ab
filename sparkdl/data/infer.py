"""Schema inference for ``prepare.columns.infer``: a declaration read from the data itself.

The user names the label (and, if wanted, the id, columns to ignore, the task); everything else
comes from the data, in at most three bounded Spark jobs before prepare's own work:

1. types: the Parquet footer or the table's schema (no job), or, for CSV and JSON, counts over
   the first ``prepare.inference.sample_rows`` rows (is every value a number, an integer, a
   boolean?);
2. the label's values and their counts: a ``groupBy`` of the label whose output is cut to
   ``max_label_values + 2`` rows, so no more than that reaches the driver (regression: two
   counts);
3. the approximate distinct count of each text column (``approx_count_distinct``, all rows).

The rules are pure functions in :mod:`sparkdl.data.infer_rules`: numbers are numeric,
booleans categorical, text categorical up to ``max_categories`` distinct values and ignored
above it. The result is an ordinary :class:`~sparkdl.config.data.ColumnsConfig`, printed as
YAML the user can paste and stored in the manifest, so every later job reads a declared schema.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.data import ColumnsConfig, InferenceConfig, SourceConfig
from sparkdl.config.loader import closest_key, to_dict
from sparkdl.data.infer_rules import (
    ColumnEvidence,
    check_label_counts,
    declaration_yaml,
    kind_of_sample,
    kind_of_type,
    resolve_declaration,
)
from sparkdl.data.manifest import InferenceInfo
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

logger = logging.getLogger(__name__)

_INTEGER = r"^[+-]?[0-9]+$"


@dataclass(frozen=True)
class Inferred:
    """The inferred declaration and the record of how it was found (for the manifest)."""

    columns: ColumnsConfig
    info: InferenceInfo


@dataclass(frozen=True)
class _Opened:
    """The input as inference reads it, before any declaration."""

    where: str
    schema: StructType
    rows: DataFrame
    typed: bool
    evidence: str


def _open(spark: SparkSession, *, source: SourceConfig, frame: DataFrame | None) -> _Opened:
    """Open the input without a column check: driver-side reads only, no Spark job."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from sparkdl.data.footer import read_schema
    from sparkdl.data.frame_source import describe_source, open_frame
    from sparkdl.data.fs import HadoopFS
    from sparkdl.data.sources import CORRUPT, open_text

    if frame is not None or source.table or source.sql:
        where = describe_source(source, frame=frame)
        df = frame if frame is not None else open_frame(spark, source)
        return _Opened(where, df.schema, df, True, f"types from the schema of {where}")
    files = tuple(HadoopFS(spark).list_files(source.path))
    if not files:
        raise BadInputError(
            f"no input files at prepare.input.path={source.path!r}; check the path and its "
            "scheme (file://, hdfs://, s3a://, dbfs:/)"
        )
    if source.format == "parquet":
        schema = read_schema(spark, files[0].path)
        rows = spark.read.schema(schema).parquet(source.path)
        return _Opened(
            source.path, schema, rows, True, f"types from the Parquet footer of {files[0].path}"
        )
    names, rows = open_text(spark, files, source=source)
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names])
    return _Opened(source.path, schema, rows.where(F.col(CORRUPT).isNull()), False, "")


def _check_named(names: list[str], columns: ColumnsConfig, where: str) -> None:
    """Refuse a named column the input lacks, and candidate names Spark ML cannot take."""
    named = [("label", columns.label), ("id", columns.id)]
    named += [("required", n) for n in columns.required]
    for key, name in named:
        if name is not None and name not in names:
            hint = closest_key(name, names)
            raise BadInputError(
                f"prepare.columns.{key} names {name!r}, which is not a column of {where}"
                f"{f' (did you mean {hint!r}?)' if hint else ''}; its columns are {names}. "
                f"Name one of them under prepare.columns.{key}, or fix the input."
            )
    odd = [n for n in names if n not in columns.ignore and ("." in n or "`" in n)]
    if odd:
        raise BadInputError(
            f"input columns {odd} of {where} hold a dot or a backtick, which Spark ML's feature "
            "stages cannot take. List them under prepare.columns.ignore, or rename them "
            "(prepare.input.sql: SELECT `a.b` AS a_b, ...)."
        )


def _q(name: str) -> str:
    return f"`{name}`"


def _label_counts(opened: _Opened, label: str, limit: int) -> dict[str | None, int]:
    """Rows per label value; at most ``limit + 2`` groups reach the driver."""
    from pyspark.sql import functions as F

    text = F.trim(F.col(_q(label)).cast("string"))
    value = F.when(text == "", F.lit(None)).otherwise(text).alias("v")
    rows = opened.rows.groupBy(value).count().limit(limit + 2).collect()
    return {r["v"]: int(r["count"]) for r in rows}


def _check_regression_label(opened: _Opened, label: str, kind: str) -> None:
    """A regression label must be a number in every row."""
    from pyspark.sql import functions as F

    if opened.typed and kind not in ("integer", "float"):
        raise BadInputError(
            f"the label column {label!r} of {opened.where} is {kind}; task regression needs "
            "numbers (or set prepare.columns.task: classification)"
        )
    text = F.trim(F.col(_q(label)).cast("string"))
    missing = text.isNull() | (text == "")
    row = opened.rows.agg(
        F.count(F.when(missing, 1)).alias("missing"),
        F.count(F.when(~missing & text.cast("double").isNull(), 1)).alias("text"),
    ).first()
    if row["missing"] or row["text"]:
        raise BadInputError(
            f"the label column {label!r} of {opened.where} has {row['missing']} empty and "
            f"{row['text']} non-numeric value(s); task regression needs a number in every row. "
            "Drop or fix those rows first, or declare prepare.columns yourself (infer: false) "
            "so prepare quarantines them."
        )


def _sample_kinds(opened: _Opened, names: list[str], rows: int) -> tuple[dict[str, str], int]:
    """Each text column's kind from counts over the first ``rows`` rows (one small job)."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("|rows")]
    for i, name in enumerate(names):
        v = F.trim(F.col(_q(name)))
        present = v.isNotNull() & (v != "")
        aggs += [
            F.count(F.when(present, 1)).alias(f"{i}|values"),
            F.count(F.when(present & v.cast("double").isNotNull(), 1)).alias(f"{i}|numbers"),
            F.count(F.when(present & v.rlike(_INTEGER), 1)).alias(f"{i}|integers"),
            F.count(F.when(present & F.lower(v).isin("true", "false"), 1)).alias(f"{i}|booleans"),
        ]
    sample = opened.rows.select(*[_q(n) for n in names]).limit(rows)
    got = sample.agg(*aggs).first().asDict()
    kinds = {
        name: kind_of_sample(
            **{k: int(got[f"{i}|{k}"]) for k in ("values", "numbers", "integers", "booleans")}
        )
        for i, name in enumerate(names)
    }
    return kinds, int(got["|rows"])


def _distinct(opened: _Opened, names: list[str]) -> dict[str, int]:
    """Approximate distinct values of each column over all rows (one job, one row back)."""
    from pyspark.sql import functions as F

    if not names:
        return {}
    got = opened.rows.agg(
        *[
            F.approx_count_distinct(F.trim(F.col(_q(n)).cast("string"))).alias(str(i))
            for i, n in enumerate(names)
        ]
    ).first()
    return {n: int(got[str(i)]) for i, n in enumerate(names)}


def infer_columns(
    spark: SparkSession,
    *,
    source: SourceConfig,
    columns: ColumnsConfig,
    inference: InferenceConfig,
    frame: DataFrame | None = None,
) -> Inferred:
    """Infer ``prepare.columns`` from the input (files, a table, a query or ``frame``).

    Parameters
    ----------
    spark : SparkSession
    source : SourceConfig
        ``prepare.input``.
    columns : ColumnsConfig
        ``prepare.columns`` with ``infer: true``: the label (and optionally id, ignore,
        required, task) named.
    inference : InferenceConfig
        ``prepare.inference``: the limits and the CSV/JSON sample size.
    frame : DataFrame, optional
        Rows to infer from instead of ``source``.

    Returns
    -------
    Inferred
        The declaration (an ordinary ``ColumnsConfig``) and its record for the manifest.

    Raises
    ------
    BadInputError
        Before any Spark job: a named column (label, id, required) the input lacks, a
        candidate name with a dot or backtick. After the label's job: a missing label in any
        row, more than ``max_label_values`` classes, fewer than two, a regression label that is
        not a number. Then: no column that qualifies as a feature.

    Examples
    --------
    >>> got = infer_columns(spark, source=cfg.input, columns=cfg.columns,
    ...                     inference=cfg.inference)  # doctest: +SKIP
    >>> got.columns.label_values, len(got.columns.numeric)  # doctest: +SKIP
    (('benign', 'malignant'), 30)
    """
    start = time.perf_counter()
    opened = _open(spark, source=source, frame=frame)
    names = opened.schema.fieldNames()
    _check_named(names, columns, opened.where)
    label = columns.label
    candidates = [n for n in names if n not in (label, columns.id, *columns.ignore)]
    if opened.typed:
        types = {f.name: f.dataType for f in opened.schema.fields}
        kinds = {n: kind_of_type(types[n]) for n in [*candidates, label]}
        evidence_text = opened.evidence
    else:
        kinds, read = _sample_kinds(opened, [*candidates, label], inference.sample_rows)
        evidence_text = f"types from the first {read} rows of {opened.where}"
    if columns.task == "classification":
        counts = _label_counts(opened, label, inference.max_label_values)
        label_values, label_counts = check_label_counts(
            counts, label=label, where=opened.where, inference=inference
        )
    else:
        _check_regression_label(opened, label, kinds[label])
        label_values, label_counts = (), {}
    measured = [
        n
        for n in candidates
        if kinds[n] == "string" or (kinds[n] == "integer" and inference.integer_categories)
    ]
    distinct = _distinct(opened, measured)
    evidence = {n: ColumnEvidence(n, kinds.get(n, ""), distinct.get(n)) for n in names}
    declared, roles = resolve_declaration(
        names=names,
        evidence=evidence,
        columns=columns,
        label_values=label_values,
        inference=inference,
    )
    text = declaration_yaml(declared)
    for name, col in roles.items():
        if col.role == "ignore" and name not in columns.ignore:
            logger.warning("inference leaves column %r out: %s", name, col.reason)
    logger.info(
        "inferred prepare.columns in %.1f s (%s; label values %s): %d numeric, %d categorical. "
        "Paste this into the config to declare them:\n%s",
        time.perf_counter() - start,
        evidence_text,
        label_counts or "regression",
        len(declared.numeric),
        len(declared.categorical),
        text,
    )
    info = InferenceInfo(
        declaration=text,
        evidence=evidence_text,
        label_counts=label_counts,
        columns=roles,
        options=to_dict(inference),
    )
    return Inferred(columns=declared, info=info)
