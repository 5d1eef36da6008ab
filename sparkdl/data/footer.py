"""Parquet footers read on the driver through parquet-hadoop (no Spark job, any Hadoop path)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType


def _open(spark: SparkSession, path: str) -> Any:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    input_file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(hadoop_path, conf)
    return jvm.org.apache.parquet.hadoop.ParquetFileReader.open(input_file)


def read_schema(spark: SparkSession, path: str) -> StructType:
    """Return the Spark schema stored in one Parquet file's footer.

    Raises
    ------
    ValueError
        When the file is not readable Parquet; the message names the file.

    Examples
    --------
    >>> read_schema(spark, "data/part-0.parquet").fieldNames()  # doctest: +SKIP
    ['id', 'x0', 'label']
    """
    from pyspark.sql.types import StructType

    jvm = spark.sparkContext._jvm
    try:
        reader = _open(spark, path)
    except Exception as exc:
        raise BadInputError(
            f"cannot read the Parquet footer of {path}: {_first_line(exc)}. The file is corrupt "
            "or not Parquet: remove it or export it again."
        ) from exc
    try:
        message = reader.getFooter().getFileMetaData().getSchema()
    finally:
        reader.close()
    sql_conf = spark._jsparkSession.sessionState().conf()
    converter = (
        jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetToSparkSchemaConverter(
            sql_conf
        )
    )
    return StructType.fromJson(json.loads(converter.convert(message).json()))


def row_group_rows(spark: SparkSession, path: str) -> list[int]:
    """Return the row count of each row group of one Parquet file, in file order.

    Examples
    --------
    >>> row_group_rows(spark, "data/part-0.parquet")  # doctest: +SKIP
    [50000, 50000]
    """
    reader = _open(spark, path)
    try:
        return [int(block.getRowCount()) for block in reader.getRowGroups()]
    finally:
        reader.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
