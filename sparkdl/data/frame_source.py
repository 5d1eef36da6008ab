"""Raw input that is already a DataFrame: a catalog table, a SQL query, or the caller's frame.

``prepare.input.table`` names a table or view of the session's catalog, ``prepare.input.sql``
a query; from Python, :func:`sparkdl.data.prepare.run_prepare` takes ``frame=`` as well. The
frame's own column types are checked against ``prepare.columns`` as a Parquet footer's are,
before any Spark job, and its rows go through the same validation, quarantine and featurizing.

A dataset version is keyed by what the input is: the files the frame reads (path, size,
modification time, from Spark's ``inputFiles``), and its plan's semantic hash. A table whose
files change is a new version; a frame of in-memory rows is known by its plan alone, so the
same plan over other rows would look like the same input: such a frame should come with
``force=True`` or a table behind it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sparkdl.config.data import ColumnsConfig, SourceConfig
from sparkdl.data.fs import FileInfo, HadoopFS
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sparkdl.data.sources import RawInput

logger = logging.getLogger(__name__)


def describe_source(source: SourceConfig, *, frame: DataFrame | None = None) -> str:
    """How errors and the manifest name the input.

    Examples
    --------
    >>> describe_source(SourceConfig(table="sales.events"))
    'table sales.events'
    >>> describe_source(SourceConfig(sql="SELECT * FROM t"))
    'the query prepare.input.sql'
    """
    if frame is not None:
        return "the DataFrame given to prepare"
    if source.table:
        return f"table {source.table}"
    return "the query prepare.input.sql"


def open_frame(spark: SparkSession, source: SourceConfig) -> DataFrame:
    """The table's or query's DataFrame, planned (so a bad name or query fails here)."""
    from pyspark.errors import AnalysisException, ParseException

    try:
        if source.table:
            return spark.table(source.table)
        return spark.sql(source.sql or "")
    except (AnalysisException, ParseException) as exc:
        first = str(exc).strip().splitlines()[0][:500]
        if source.table:
            tables = [t.name for t in spark.catalog.listTables()]
            raise BadInputError(
                f"prepare.input.table={source.table!r} cannot be read: {first}. Tables and "
                f"views of the current database: {tables}; create it or fix the name "
                "(database.table for another database)"
            ) from exc
        raise BadInputError(
            f"prepare.input.sql cannot be planned: {first}. Fix the query (it runs with "
            "spark.sql in the job's session, which sees its catalog's tables and views)"
        ) from exc


def _files(spark: SparkSession, frame: DataFrame) -> tuple[FileInfo, ...]:
    """The files ``frame`` reads, with size and modification time: one listing per folder
    (a table of thousands of files costs a few listings, not a status call per file)."""
    fs = HadoopFS(spark)
    wanted = {fs.qualify(path) for path in frame.inputFiles()}
    folders = {path.rsplit("/", 1)[0] for path in wanted}
    found = [
        f
        for folder in sorted(folders)
        for f in fs.list_files(folder, recursive=False)
        if f.path in wanted
    ]
    return tuple(sorted(found, key=lambda f: f.path))


def frame_fingerprint(plan_hash: int, files: tuple[FileInfo, ...]) -> str:
    """The version key's input part: the plan's semantic hash and the files it reads.

    Examples
    --------
    >>> frame_fingerprint(7, ())[:12] == frame_fingerprint(7, ())[:12] != frame_fingerprint(8, ())[:12]
    True
    """
    h = hashlib.sha256(f"plan {plan_hash}\n".encode())
    for f in files:
        h.update(f"{f.path}\t{f.size}\t{f.modified_ms}\n".encode())
    return h.hexdigest()


def read_frame(
    spark: SparkSession,
    *,
    source: SourceConfig,
    columns: ColumnsConfig,
    frame: DataFrame | None = None,
    label_optional: bool = False,
) -> RawInput:
    """The :class:`~sparkdl.data.sources.RawInput` of a table, a query or ``frame``.

    Raises
    ------
    BadInputError
        Before any Spark job: a table that does not exist, a query that cannot be planned,
        columns that differ from ``prepare.columns`` (missing, unexpected, of the wrong type),
        a name that occurs twice; then, after one small job, a frame without rows.
    """
    from pyspark.sql import functions as F

    from sparkdl.data.sources import CORRUPT, RawInput, column_check, select_declared, type_problems

    where = describe_source(source, frame=frame)
    df = frame if frame is not None else open_frame(spark, source)
    actual = list(df.columns)
    check = column_check(spark, columns=columns, label_optional=label_optional)
    check(actual, where=where, type_problems=type_problems(df.schema, columns))
    if not df.limit(1).count():
        raise BadInputError(f"{where} has no rows; nothing to prepare")
    files = _files(spark, df)
    marked = df.withColumn(CORRUPT, F.lit(None).cast("string"))  # typed rows: none malformed
    selected = select_declared(marked, actual=actual, columns=columns)
    logger.info("input: %s, %d files behind it; columns %s", where, len(files), actual)
    return RawInput(
        frame=selected,
        files=files,
        fingerprint=frame_fingerprint(df.semanticHash(), files),
        input_columns=tuple(actual),
        typed=True,
        origin=where,
        kind="dataframe" if frame is not None else ("table" if source.table else "sql"),
    )
