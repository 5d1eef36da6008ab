"""Row-level validation as pure DataFrame transforms: tag each row with its first defect.

A row is valid when ``reason`` is null. Reasons are short, low-cardinality codes (the column
follows after a colon) so the quarantine can be counted by reason:

- ``malformed_row:too_many_fields`` / ``malformed_row:too_few_fields`` (CSV), ``malformed_json``
- ``null_required:<column>`` (label, id and ``prepare.columns.required``)
- ``unparseable:<column>`` (a value that is not a number where one is declared)
- ``non_finite:<column>`` (NaN or +/-infinity)
- ``label_not_declared`` (a class outside ``prepare.columns.label_values``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkdl.config.data import ColumnsConfig
from sparkdl.data.sources import CORRUPT, LAST_NULL

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REASON = "reason"
LABEL_INDEX = "_label"


PARSED = "_p_"


def _num(col: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"`{col}`").cast("double")


def parsed_name(col: str) -> str:
    """Name of the column that holds ``col`` parsed as a number (added by tag_defects).

    Examples
    --------
    >>> parsed_name("x0")
    '_p_x0'
    """
    return f"{PARSED}{col}"


def _label_values_numeric(columns: ColumnsConfig) -> list[float] | None:
    try:
        return [float(v) for v in columns.label_values]
    except ValueError:
        return None


def label_index(columns: ColumnsConfig) -> Column:
    """Return the training label: the class's position in ``label_values``, or the number.

    Class values match numerically when every declared value is a number (so ``1``, ``1.0``
    and an integer column all mean class ``"1"``), else as trimmed strings.

    Examples
    --------
    >>> label_index(ColumnsConfig(numeric=("x",)))  # doctest: +SKIP
    Column<'CASE WHEN ... END'>
    """
    from pyspark.sql import functions as F

    raw = F.col(f"`{columns.label}`")
    number = F.col(f"`{parsed_name(columns.label)}`")
    if columns.task == "regression":
        return number
    numeric = _label_values_numeric(columns)
    expr = None
    for i, value in enumerate(columns.label_values):
        cond = (
            number == F.lit(numeric[i])
            if numeric is not None
            else F.trim(raw.cast("string")) == F.lit(value)
        )
        expr = F.when(cond, F.lit(i)) if expr is None else expr.when(cond, F.lit(i))
    return expr.cast("int")  # type: ignore[union-attr]


def _is_non_finite(c: Column) -> Column:
    from pyspark.sql import functions as F

    return F.isnan(c) | (F.abs(c) == F.lit(float("inf")))


def tag_defects(df: DataFrame, *, columns: ColumnsConfig, typed: bool) -> DataFrame:
    """Add ``reason`` (null for a valid row), ``_label`` and parsed ``_p_<col>`` numbers.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`sparkdl.data.sources.read_raw`: declared columns, ``_corrupt`` and
        ``_last_null``.
    columns : ColumnsConfig
        The declared schema.
    typed : bool
        True for Parquet input (values already typed; no parse failures possible).

    Returns
    -------
    DataFrame
        The same rows, none dropped, with ``reason``, ``_label`` and, per numeric column (and
        a ``long`` id), the parsed value in ``_p_<col>``.

    Examples
    --------
    >>> tag_defects(raw.frame, columns=cfg.prepare.columns, typed=False)  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    numbers = [*columns.numeric, columns.label]
    # Parse each number once; every check below reads the parsed column.
    df = df.select(
        "*",
        *[_num(n).alias(parsed_name(n)) for n in numbers],
        *(
            [F.col(f"`{columns.id}`").cast("long").alias(parsed_name(columns.id))]
            if columns.id and columns.id_type == "long"
            else []
        ),
    )
    checks: list[tuple[Column, Column]] = []
    corrupt = F.col(CORRUPT).isNotNull()
    checks.append(
        (
            corrupt,
            F.when(
                F.col(CORRUPT).startswith("{") | F.col(CORRUPT).startswith("["),
                F.lit("malformed_json"),
            )
            # A short CSV record leaves its trailing columns null; a long one fills them all.
            .when(F.col(LAST_NULL), F.lit("malformed_row:too_few_fields"))
            .otherwise(F.lit("malformed_row:too_many_fields")),
        )
    )
    required = dict.fromkeys(
        [*([columns.id] if columns.id else []), columns.label, *columns.required]
    )
    for name in required:
        raw = F.col(f"`{name}`")
        empty = raw.isNull() if typed else (raw.isNull() | (F.trim(raw.cast("string")) == ""))
        checks.append((empty, F.lit(f"null_required:{name}")))
    if columns.id and columns.id_type == "long":
        raw_id = F.col(f"`{columns.id}`")
        parsed_id = F.col(f"`{parsed_name(columns.id)}`")
        checks.append((raw_id.isNotNull() & parsed_id.isNull(), F.lit(f"unparseable:{columns.id}")))
    for name in [*columns.numeric, *([columns.label] if columns.task == "regression" else [])]:
        raw = F.col(f"`{name}`")
        value = F.col(f"`{parsed_name(name)}`")
        if not typed:
            checks.append(
                (
                    raw.isNotNull() & (F.trim(raw) != "") & value.isNull(),
                    F.lit(f"unparseable:{name}"),
                )
            )
        checks.append((value.isNotNull() & _is_non_finite(value), F.lit(f"non_finite:{name}")))
    label = label_index(columns)
    if columns.task == "classification":
        checks.append(
            (F.col(f"`{columns.label}`").isNotNull() & label.isNull(), F.lit("label_not_declared"))
        )

    reason = None
    for cond, code in checks:
        reason = F.when(cond, code) if reason is None else reason.when(cond, code)
    return df.withColumn(REASON, reason).withColumn(LABEL_INDEX, label)  # type: ignore[arg-type]


def parse_valid(df: DataFrame, *, columns: ColumnsConfig) -> DataFrame:
    """Turn validated, tagged rows into typed inputs for featurization (pure transform).

    Numeric columns take their parsed doubles (nulls kept for imputation), categorical columns
    become trimmed strings, a ``long`` id its parsed value. Other columns pass through.

    Examples
    --------
    >>> parse_valid(valid_rows, columns=cfg.prepare.columns).dtypes  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    # One projection for every column: a withColumn per column stacks a Project per column,
    # which Spark analyses and optimises again and again (a prepare of 12,000 rows of 256
    # numeric columns fitted in 102 s and wrote each split in 44 s that way; 18 s and 1-3 s
    # with one projection, the same rows by digest).
    replaced: dict[str, Column] = {}
    if columns.id:
        if columns.id_type == "long":
            replaced[columns.id] = F.col(f"`{parsed_name(columns.id)}`")
        else:
            replaced[columns.id] = F.col(f"`{columns.id}`").cast("string")
    for name in columns.numeric:
        replaced[name] = F.col(f"`{parsed_name(name)}`")
    for name in columns.categorical:
        replaced[name] = F.trim(F.col(f"`{name}`").cast("string"))
    return df.withColumns(replaced) if replaced else df
