"""prepare from a catalog table, a SQL query or a DataFrame (``prepare.input.table``/``sql``,
``run_prepare(frame=...)``): the same rows give the same published splits as Parquet files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.data.dataset import open_dataset
from sparkdl.data.prepare import run_prepare
from sparkdl.errors import BadInputError
from tests.integration.test_prepare import COLUMNS, _frame

pytestmark = pytest.mark.integration

TABLE = "sparkdl_frame_input_rows"


def _cfg(out: Path, **source: str):
    sets = [f"prepare.output={out}", *(f"prepare.input.{k}={v}" for k, v in source.items())]
    for key, value in COLUMNS.items():
        sets.append(f"prepare.columns.{key}={value}")
    return load_config(SparkdlConfig, overrides=sets).prepare


@pytest.fixture(scope="module")
def rows(spark, tmp_path_factory: pytest.TempPathFactory):
    """1000 typed rows as a Spark DataFrame, the same rows as Parquet files and as a table."""
    df = spark.createDataFrame(_frame(1000, seed=3))
    files = tmp_path_factory.mktemp("frame-input") / "parquet"
    df.write.parquet(str(files))
    spark.sql(f"DROP TABLE IF EXISTS {TABLE}")
    df.write.saveAsTable(TABLE)
    yield df, files
    spark.sql(f"DROP TABLE IF EXISTS {TABLE}")


def test_a_table_a_query_and_a_frame_publish_what_the_parquet_files_publish(
    spark, rows, tmp_path: Path
) -> None:
    df, files = rows
    from_files = run_prepare(spark, cfg=_cfg(tmp_path / "files", path=str(files), format="parquet"))
    from_table = run_prepare(spark, cfg=_cfg(tmp_path / "table", table=TABLE))
    query = f"SELECT * FROM {TABLE} WHERE id >= 0"
    from_sql = run_prepare(spark, cfg=_cfg(tmp_path / "sql", sql=f"'{query}'"))
    from_frame = run_prepare(spark, cfg=_cfg(tmp_path / "frame"), frame=df)
    for got in (from_table, from_sql, from_frame):
        assert got.split_rows == from_files.split_rows
        assert got.digests == from_files.digests  # the same featurized rows in every split
    manifest = open_dataset(spark, str(tmp_path / "table")).manifest
    assert (manifest.input.path, manifest.input.format) == (f"table {TABLE}", "table")
    assert manifest.input.files >= 1  # the table's own Parquet files key the version
    assert open_dataset(spark, str(tmp_path / "sql")).manifest.input.format == "sql"
    assert open_dataset(spark, str(tmp_path / "frame")).manifest.input.format == "dataframe"


def test_the_same_table_is_skipped_and_new_rows_in_it_make_a_new_version(
    spark, rows, tmp_path: Path
) -> None:
    df, _ = rows
    name = f"{TABLE}_grows"
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    df.write.saveAsTable(name)
    try:
        cfg = _cfg(tmp_path / "out", table=name)
        first = run_prepare(spark, cfg=cfg)
        assert run_prepare(spark, cfg=cfg).skipped
        df.limit(10).write.mode("append").saveAsTable(name)
        grown = run_prepare(spark, cfg=cfg)
        assert not grown.skipped and grown.version != first.version
        assert grown.rows_in == first.rows_in + 10
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_bad_tables_queries_and_frames_are_refused_before_any_job(spark, rows, tmp_path) -> None:
    df, _ = rows
    with pytest.raises(
        BadInputError, match=r"prepare\.input\.table=.no_such_table. cannot be read"
    ):
        run_prepare(spark, cfg=_cfg(tmp_path / "a", table="no_such_table"))
    with pytest.raises(BadInputError, match=r"prepare\.input\.sql cannot be planned"):
        run_prepare(spark, cfg=_cfg(tmp_path / "b", sql="'SELEC nothing'"))
    with pytest.raises(BadInputError, match=r"missing \['c0'\]"):
        run_prepare(spark, cfg=_cfg(tmp_path / "c"), frame=df.drop("c0"))
    with pytest.raises(BadInputError, match="x1: expected a number, actual string"):
        run_prepare(spark, cfg=_cfg(tmp_path / "d"), frame=df.withColumn("x1", df.c0))
    with pytest.raises(BadInputError, match="has no rows"):
        run_prepare(spark, cfg=_cfg(tmp_path / "e"), frame=df.limit(0))
    with pytest.raises(BadInputError, match="sets both table and sql"):
        _cfg(tmp_path / "f", table=TABLE, sql="'SELECT 1'")


def test_sparkdl_prepare_takes_a_dataframe_through_the_cli_s_step(spark, rows, tmp_path) -> None:
    import sparkdl
    from sparkdl.steps import StepOptions

    df, _ = rows
    sets = [f"prepare.output={tmp_path / 'api'}"]
    sets += [f"prepare.columns.{key}={value}" for key, value in COLUMNS.items()]
    cfg = load_config(SparkdlConfig, overrides=sets)
    out = sparkdl.prepare(df, config=cfg)
    direct = run_prepare(spark, cfg=_cfg(tmp_path / "direct"), frame=df)
    assert out.splits == direct.split_rows and sum(out.splits.values()) == 1000
    assert open_dataset(spark, out.dataset).manifest.version == out.version
    # the step the CLI and the pipeline run, by name: the version is published already
    again = sparkdl.run_step("prepare", config=cfg, spark=spark, options=StepOptions(frame=df))
    assert again.summary.startswith("already published") and again.output == out
    with pytest.raises(BadInputError, match="give a pyspark DataFrame"):
        sparkdl.prepare([1, 2], config=cfg)
