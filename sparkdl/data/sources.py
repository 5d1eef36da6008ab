"""Open raw CSV, JSON-lines or Parquet input after checking its columns against the config.

The column check reads only the first line (CSV header, first JSON record) or the Parquet footer
of one file on the driver, so a wrong schema fails in seconds, before any Spark job runs. Every
row is kept: malformed CSV/JSON lines land in ``_corrupt`` and are quarantined later, never
dropped.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.data import ColumnsConfig, SourceConfig
from sparkdl.data.footer import read_schema, row_group_rows
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
    origin: str = ""  # the path, or "table x", the query, the caller's DataFrame
    kind: str = ""  # csv, json, parquet, table, sql, dataframe


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


@dataclass(frozen=True)
class _Head:
    """The first bytes of one input file, decompressed, as text."""

    file: FileInfo
    lines: list[str]
    truncated: bool


def read_head(
    spark: SparkSession, path: str, *, max_bytes: int = _HEADER_BYTES, encoding: str = "UTF-8"
) -> tuple[str, bool]:
    """Return the first ``max_bytes`` of a file as Spark reads it, and whether there is more.

    The file is decompressed by the Hadoop codec its name selects (``.gz``, ``.bz2``,
    ``.deflate``, ``.lz4``, ``.snappy``, ``.zst``: Hadoop's ``CompressionCodecFactory``, the
    one Spark's text, CSV and JSON readers use), so the header check sees what Spark will see.

    Examples
    --------
    >>> read_head(spark, "data/raw/part-0.csv.gz")  # doctest: +SKIP
    ('id,x0,label\\n0,0.5,1\\n', False)
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hadoop_path)
    stream = hadoop_path.getFileSystem(conf).open(hadoop_path)
    try:
        source = stream if codec is None else codec.createInputStream(stream)
        try:
            # One byte more than asked tells whether the file goes on.
            bounded = jvm.org.apache.commons.io.input.BoundedInputStream(source, max_bytes + 1)
            raw = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(bounded))
        finally:
            source.close()
    except Exception as exc:  # py4j surfaces Java I/O errors as generic exceptions
        message = str(exc).strip().splitlines()
        raise BadInputError(
            f"cannot read the start of input file {path}"
            f"{f' (compression codec {codec.getClass().getSimpleName()})' if codec else ''}: "
            f"{message[0] if message else type(exc).__name__}. The file is corrupt or truncated, "
            "or its name ends in a compression suffix it does not have: remove or re-export it."
        ) from exc
    finally:
        stream.close()
    try:
        text = raw[:max_bytes].decode(encoding, "replace")
    except LookupError:  # a Java charset name Python does not know: the header is ASCII anyway
        text = raw[:max_bytes].decode("utf-8", "replace")
    return text, len(raw) > max_bytes


def _heads(spark: SparkSession, files: tuple[FileInfo, ...], encoding: str) -> Iterator[_Head]:
    """Yield each non-empty file's first lines, in listing order, reading each only when asked."""
    for f in files:
        if f.size == 0:
            continue
        text, truncated = read_head(spark, f.path, encoding=encoding)
        lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
        if lines:
            yield _Head(file=f, lines=lines, truncated=truncated)


def _first_record(
    spark: SparkSession, files: tuple[FileInfo, ...], *, source: SourceConfig
) -> tuple[FileInfo, str]:
    """Return the first file with content and its first line; refuse input without any rows.

    A CSV file holds rows when it has a line after its header, a JSON-lines file when it has a
    line at all. Files are read only until one with rows is found (normally the first).
    """
    first: _Head | None = None
    header_lines = 1 if source.format == "csv" else 0
    for head in _heads(spark, files, source.encoding):
        first = first or head
        if head.truncated or len(head.lines) > header_lines:
            return first.file, first.lines[0]
    if first is None:
        raise BadInputError(
            f"all {len(files)} input files are empty (first: {files[0].path}); point "
            "prepare.input.path at the data"
        )
    raise BadInputError(
        f"the {len(files)} input file(s) at prepare.input.path={source.path!r} hold a CSV "
        f"header but no data rows (first: {first.file.path}, header {first.lines[0]!r}); point "
        "prepare.input.path at files with data, or remove the header-only files"
    )


def _first_parquet_with_rows(spark: SparkSession, files: tuple[FileInfo, ...], path: str) -> None:
    """Refuse Parquet input whose files hold no rows; reads footers only until one has rows."""
    for f in files:
        if sum(row_group_rows(spark, f.path)):
            return
    raise BadInputError(
        f"the {len(files)} Parquet file(s) at prepare.input.path={path!r} hold no rows "
        f"(first: {files[0].path}); point prepare.input.path at the data"
    )


def _is_numeric(dtype: DataType) -> bool:
    from pyspark.sql.types import NumericType

    return isinstance(dtype, NumericType)


def type_problems(schema: StructType, columns: ColumnsConfig) -> list[str]:
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
    case_sensitive: bool = False,
) -> None:
    """Raise BadInputError when input columns differ from the declared ones, listing both.

    A name that occurs twice (ignoring case unless ``case_sensitive``, as Spark's
    ``spark.sql.caseSensitive`` does) is refused first: Spark cannot read, select or drop
    either copy.

    Examples
    --------
    >>> cols = ColumnsConfig(numeric=("x0", "x1"))
    >>> check_columns(["id", "x0"], columns=cols, where="a.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: input columns in a.csv do not match prepare.columns: missing ['label', 'x1'], unexpected ['id']. Expected...
    >>> check_columns(["x0", "label", "X0"], columns=cols, where="a.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: input columns in a.csv name 'x0' more than once (columns 1 and 3: 'x0', 'X0')...
    """
    _check_unique(actual, where=where, case_sensitive=case_sensitive)
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


def _check_unique(actual: Sequence[str], *, where: str, case_sensitive: bool) -> None:
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(actual):
        seen.setdefault(name if case_sensitive else name.lower(), []).append(i)
    repeated = [positions for positions in seen.values() if len(positions) > 1]
    if not repeated:
        return
    parts = [
        f"{actual[p[0]]!r} more than once (columns "
        f"{', '.join(str(i + 1) for i in p[:-1])} and {p[-1] + 1}: "
        f"{', '.join(repr(actual[i]) for i in p)})"
        for p in repeated
    ]
    how = "" if case_sensitive else " (Spark compares names ignoring case: spark.sql.caseSensitive)"
    raise BadInputError(
        f"input columns in {where} name {'; '.join(parts)}. Spark cannot read, select or drop "
        f"either copy of a repeated name{how}, so prepare.columns.ignore cannot drop it either. "
        "Rename or remove the repeated column in the data: every column needs its own name."
    )


# check_columns with the declared columns bound (a functools.partial).
_Check = functools.partial


def _string_schema(actual: list[str]) -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(c, T.StringType()) for c in actual]
        + [T.StructField(CORRUPT, T.StringType())]
    )


def _open_csv(
    spark: SparkSession, files: tuple[FileInfo, ...], *, source: SourceConfig, check: _Check
) -> tuple[list[str], DataFrame]:
    first, line = _first_record(spark, files, source=source)
    actual = parse_header(line, source)
    check(actual, where=first.path)
    reader = spark.read.schema(_string_schema(actual)).options(
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
    return actual, reader.csv(source.path)


def _open_json(
    spark: SparkSession, files: tuple[FileInfo, ...], *, source: SourceConfig, check: _Check
) -> tuple[list[str], DataFrame]:
    first, line = _first_record(spark, files, source=source)
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
    # Every key as written, repeats included, so a repeated name is reported, not merged.
    actual = [k for k, _ in json.loads(line, object_pairs_hook=lambda pairs: pairs)]
    check(actual, where=first.path)
    frame = spark.read.schema(_string_schema(actual)).json(
        source.path,
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT,
        encoding=source.encoding,
    )
    return actual, frame


def _open_parquet(
    spark: SparkSession, files: tuple[FileInfo, ...], *, source: SourceConfig, check: _Check
) -> tuple[list[str], DataFrame]:
    from pyspark.sql import functions as F

    first = files[0]
    file_schema = read_schema(spark, first.path)
    actual = [f.name for f in file_schema.fields]
    check(
        actual,
        where=first.path,
        type_problems=type_problems(file_schema, check.keywords["columns"]),
    )
    _first_parquet_with_rows(spark, files, source.path)
    frame = (
        spark.read.schema(file_schema)
        .parquet(source.path)
        .withColumn(CORRUPT, F.lit(None).cast("string"))
    )
    return actual, frame


def open_text(
    spark: SparkSession, files: tuple[FileInfo, ...], *, source: SourceConfig
) -> tuple[list[str], DataFrame]:
    """CSV or JSON input opened as prepare opens it (every column as text, plus ``_corrupt``),
    checked only for repeated names: what schema inference samples before any declaration."""
    case_sensitive = spark.conf.get("spark.sql.caseSensitive", "false").lower() == "true"
    check = functools.partial(_check_unique, case_sensitive=case_sensitive)
    opener = _open_csv if source.format == "csv" else _open_json
    return opener(spark, files, source=source, check=check)


def column_check(spark: SparkSession, *, columns: ColumnsConfig, label_optional: bool) -> _Check:
    """:func:`check_columns` bound to the declared columns and the session's case rule."""
    return functools.partial(
        check_columns,
        columns=columns,
        optional=(columns.label,) if label_optional else (),
        case_sensitive=spark.conf.get("spark.sql.caseSensitive", "false").lower() == "true",
    )


def select_declared(frame: DataFrame, *, actual: list[str], columns: ColumnsConfig) -> DataFrame:
    """The declared columns (a placeholder label where the input has none), ``_corrupt``,
    ``source_file`` and ``_last_null``; ``frame`` must hold ``_corrupt`` already.

    A short CSV record leaves its last columns null, a long one fills them: ``_last_null``
    keeps that bit even when the last column is one that ``prepare.columns.ignore`` drops.
    """
    from pyspark.sql import functions as F

    placeholder = columns.label_values[0] if columns.task == "classification" else "0"
    return frame.select(
        *[
            F.col(f"`{c}`") if c in actual else F.lit(placeholder).alias(c)
            for c in columns.declared
        ],
        CORRUPT,
        F.input_file_name().alias(SOURCE_FILE),
        F.col(f"`{actual[-1]}`").isNull().alias(LAST_NULL),
    )


def read_raw(
    spark: SparkSession,
    *,
    source: SourceConfig,
    columns: ColumnsConfig,
    label_optional: bool = False,
    frame: DataFrame | None = None,
) -> RawInput:
    """Check the input's columns on the driver, then return the lazily read raw rows.

    A ``frame``, ``source.table`` or ``source.sql`` is read by
    :func:`sparkdl.data.frame_source.read_frame` instead of files.

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
    frame : DataFrame, optional
        Rows to prepare instead of ``source``'s files (the Python API's input).

    Returns
    -------
    RawInput
        ``frame`` has the declared columns (strings for CSV/JSON, the file's types for Parquet),
        ``_corrupt`` (the raw line of a malformed CSV/JSON record, else null),
        ``source_file`` and ``_last_null`` (whether the input's last column is null).

    Raises
    ------
    BadInputError
        Before any Spark job runs: no input files, all files empty, no rows (CSV headers only,
        Parquet files without rows), an unreadable file start or Parquet footer, a column name
        that occurs twice, or columns that differ from ``prepare.columns`` (missing,
        unexpected, wrong type). Compressed files (``.gz``, ``.bz2``, ...) are checked as Spark
        reads them, decompressed.

    Examples
    --------
    >>> raw = read_raw(spark, source=cfg.prepare.input, columns=cfg.prepare.columns)  # doctest: +SKIP
    """

    if frame is not None or source.table or source.sql:
        from sparkdl.data.frame_source import read_frame

        return read_frame(
            spark, source=source, columns=columns, frame=frame, label_optional=label_optional
        )
    fs = HadoopFS(spark)
    files = tuple(fs.list_files(source.path))
    if not files:
        raise BadInputError(
            f"no input files at prepare.input.path={source.path!r} "
            f"(resolved to {fs.qualify(source.path)}); check the path and its scheme "
            "(file://, hdfs://, s3a://, dbfs:/)"
        )
    fingerprint = fingerprint_files(files)
    check = column_check(spark, columns=columns, label_optional=label_optional)
    typed = source.format == "parquet"
    opener = {"csv": _open_csv, "json": _open_json, "parquet": _open_parquet}[source.format]
    actual, frame = opener(spark, files, source=source, check=check)
    frame = select_declared(frame, actual=actual, columns=columns)
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
        origin=source.path,
        kind=source.format,
    )
