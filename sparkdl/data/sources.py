"""Open raw CSV, JSON-lines or Parquet input after checking its columns against the config.

The column check reads only the first line (CSV header, first JSON record) or the Parquet footer
of one file on the driver, so a wrong schema fails in seconds, before any Spark job runs. Every
row is kept: malformed CSV/JSON lines land in ``_corrupt`` and are quarantined later, never
dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.data import ColumnsConfig, SourceConfig
from sparkdl.data.footer import read_schema
from sparkdl.data.fs import FileInfo, HadoopFS
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

logger = logging.getLogger(__name__)

CORRUPT = "_corrupt"
LAST_NULL = "_last_null"
SOURCE_FILE = "source_file"
_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class RawInput:
    """The raw rows (declared columns, ``_corrupt``, ``source_file``) and where they came from."""

    frame: DataFrame
    files: tuple[FileInfo, ...]
    fingerprint: str
    input_columns: tuple[str, ...]
    typed: bool


def fingerprint_files(files: tuple[FileInfo, ...]) -> str:
    """Hash the listing (path, size, modification time) that identifies an input version.

    Examples
    --------
    >>> fingerprint_files((FileInfo("file:/a.csv", 10, 1),))[:12]
    '6e3664258213'
    """
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.path}\t{f.size}\t{f.modified_ms}\n".encode())
    return h.hexdigest()


def _delimiter(source: SourceConfig) -> str:
    return "\t" if source.delimiter == "\\t" else source.delimiter


def parse_header(line: str, source: SourceConfig) -> list[str]:
    """Split a CSV header line with the configured delimiter and quoting.

    Examples
    --------
    >>> parse_header('id,"x 1",label', SourceConfig())
    ['id', 'x 1', 'label']
    """
    reader = csv.reader(
        io.StringIO(line),
        delimiter=_delimiter(source),
        quotechar=source.quote,
        escapechar=source.escape or None,
    )
    row = next(reader, [])
    return [c.strip() for c in row]


def _first_line(fs: HadoopFS, files: tuple[FileInfo, ...]) -> tuple[FileInfo, str]:
    for f in files:
        if f.size == 0:
            continue
        text = fs.read_text(f.path, max_bytes=_HEADER_BYTES).lstrip("\ufeff")
        for line in text.splitlines():
            if line.strip():
                return f, line
    raise BadInputError(
        f"all {len(files)} input files are empty (first: {files[0].path}); point "
        "prepare.input.path at the data"
    )


def _is_numeric(dtype: DataType) -> bool:
    from pyspark.sql.types import NumericType

    return isinstance(dtype, NumericType)


def _type_problems(schema: StructType, columns: ColumnsConfig) -> list[str]:
    from pyspark.sql.types import BooleanType, NumericType, StringType

    fields = {f.name: f.dataType for f in schema.fields}
    problems = []
    for name in columns.numeric:
        if name in fields and not _is_numeric(fields[name]):
            problems.append(f"{name}: expected a number, actual {fields[name].simpleString()}")
    for name in columns.categorical:
        if name in fields and not isinstance(fields[name], StringType | NumericType | BooleanType):
            problems.append(
                f"{name}: expected string, integer or boolean, actual {fields[name].simpleString()}"
            )
    label = fields.get(columns.label)
    if label is not None:
        if columns.task == "regression" and not _is_numeric(label):
            problems.append(f"{columns.label}: expected a number, actual {label.simpleString()}")
        elif not isinstance(label, StringType | NumericType | BooleanType):
            problems.append(
                f"{columns.label}: expected a class value, actual {label.simpleString()}"
            )
    return problems


def check_columns(
    actual: list[str],
    *,
    columns: ColumnsConfig,
    where: str,
    type_problems: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> None:
    """Raise ValueError when input columns differ from the declared ones, listing both.

    Examples
    --------
    >>> cols = ColumnsConfig(numeric=("x0", "x1"))
    >>> check_columns(["id", "x0"], columns=cols, where="a.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: input columns in a.csv do not match prepare.columns: missing ['label', 'x1'], unexpected ['id']. Expected...
    """
    declared = list(columns.declared)
    missing = [c for c in declared if c not in actual and c not in optional]
    unexpected = [c for c in actual if c not in declared and c not in columns.ignore]
    if not (missing or unexpected or type_problems):
        return
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if unexpected:
        parts.append(f"unexpected {unexpected}")
    if type_problems:
        parts.append(f"wrong types [{'; '.join(type_problems)}]")
    raise BadInputError(
        f"input columns in {where} do not match prepare.columns: {', '.join(parts)}. "
        f"Expected (declared): {declared}; actual: {actual}. Fix the data, or declare the "
        "columns under prepare.columns (numeric, categorical, label, id), or list columns to "
        "drop under prepare.columns.ignore."
    )


def read_raw(
    spark: SparkSession,
    *,
    source: SourceConfig,
    columns: ColumnsConfig,
    label_optional: bool = False,
) -> RawInput:
    """Check the input's columns on the driver, then return the lazily read raw rows.

    Parameters
    ----------
    spark : SparkSession
    source : SourceConfig
        ``prepare.input``.
    columns : ColumnsConfig
        ``prepare.columns``: the declared schema.
    label_optional : bool
        Accept input without the label column (new data to predict on); the frame then has a
        placeholder label, the first declared class (or 0 for regression), and
        ``input_columns`` shows that the input had none.

    Returns
    -------
    RawInput
        ``frame`` has the declared columns (strings for CSV/JSON, the file's types for Parquet),
        ``_corrupt`` (the raw line of a malformed CSV/JSON record, else null),
        ``source_file`` and ``_last_null`` (whether the input's last column is null).

    Raises
    ------
    ValueError
        No input files, all files empty, unreadable Parquet footer, or columns that differ
        from ``prepare.columns`` (missing, unexpected, wrong type), before any Spark job runs.

    Examples
    --------
    >>> raw = read_raw(spark, source=cfg.prepare.input, columns=cfg.prepare.columns)  # doctest: +SKIP
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    fs = HadoopFS(spark)
    files = tuple(fs.list_files(source.path))
    if not files:
        raise BadInputError(
            f"no input files at prepare.input.path={source.path!r} "
            f"(resolved to {fs.qualify(source.path)}); check the path and its scheme "
            "(file://, hdfs://, s3a://, dbfs:/)"
        )
    fingerprint = fingerprint_files(files)
    declared = list(columns.declared)
    optional = (columns.label,) if label_optional else ()
    typed = source.format == "parquet"

    if source.format == "csv":
        first, line = _first_line(fs, files)
        actual = parse_header(line, source)
        check_columns(actual, columns=columns, where=first.path, optional=optional)
        schema = T.StructType(
            [T.StructField(c, T.StringType()) for c in actual]
            + [T.StructField(CORRUPT, T.StringType())]
        )
        reader = spark.read.schema(schema).options(
            header=True,
            sep=_delimiter(source),
            quote=source.quote,
            escape=source.escape,
            encoding=source.encoding,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            # Each file's header must name the same columns in the same order as the first's.
            enforceSchema=False,
            ignoreLeadingWhiteSpace=True,
            ignoreTrailingWhiteSpace=True,
        )
        frame = reader.csv(source.path)
    elif source.format == "json":
        first, line = _first_line(fs, files)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(
                f"the first line of {first.path} is not a JSON object ({exc}); prepare.input.format "
                "json expects one JSON object per line"
            ) from exc
        if not isinstance(record, dict):
            raise BadInputError(
                f"the first line of {first.path} is a JSON {type(record).__name__}, not an object"
            )
        actual = list(record)
        check_columns(actual, columns=columns, where=first.path, optional=optional)
        schema = T.StructType(
            [T.StructField(c, T.StringType()) for c in actual]
            + [T.StructField(CORRUPT, T.StringType())]
        )
        frame = spark.read.schema(schema).json(
            source.path,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            encoding=source.encoding,
        )
    else:
        first = files[0]
        file_schema = read_schema(spark, first.path)
        actual = [f.name for f in file_schema.fields]
        check_columns(
            actual,
            columns=columns,
            where=first.path,
            type_problems=_type_problems(file_schema, columns),
            optional=optional,
        )
        frame = (
            spark.read.schema(file_schema)
            .parquet(source.path)
            .withColumn(CORRUPT, F.lit(None).cast("string"))
        )
    # A short CSV record leaves its last columns null, a long one fills them: keep that bit
    # even when the last column is one that prepare.columns.ignore drops.
    placeholder = columns.label_values[0] if columns.task == "classification" else "0"
    frame = frame.select(
        *[F.col(f"`{c}`") if c in actual else F.lit(placeholder).alias(c) for c in declared],
        CORRUPT,
        F.input_file_name().alias(SOURCE_FILE),
        F.col(f"`{actual[-1]}`").isNull().alias(LAST_NULL),
    )
    logger.info(
        "input: %d %s files (%.1f MB) at %s; columns %s",
        len(files),
        source.format,
        sum(f.size for f in files) / 1e6,
        source.path,
        actual,
    )
    return RawInput(
        frame=frame,
        files=files,
        fingerprint=fingerprint,
        input_columns=tuple(actual),
        typed=typed,
    )
