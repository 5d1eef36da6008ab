"""The prepare job on real files: defects, accounting, idempotency, splits, leakage, layout."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.data import prepare as prepare_mod
from sparkdl.data.dataset import open_dataset
from sparkdl.data.prepare import TooManyBadRows, run_prepare
from sparkdl.data.split import assign_split

pytestmark = pytest.mark.integration

COLUMNS = {
    "id": "id",
    "id_type": "long",
    "label": "label",
    "label_values": [0, 1],
    "numeric": ["x0", "x1", "x2"],
    "categorical": ["c0"],
}


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": np.arange(n)})
    for i in range(3):
        df[f"x{i}"] = rng.normal(size=n).round(6)
    df["c0"] = rng.choice(["a", "b", "c"], n)
    df["label"] = ((df.x0 * df.x1 + (df.c0 == "a")) > 0.3).astype(int)
    return df


def _cfg(tmp_path: Path, raw: Path, fmt: str = "csv", **prepare: object):
    data = {
        "prepare": {
            "input": {"path": str(raw), "format": fmt},
            "columns": COLUMNS,
            "output": str(tmp_path / "out"),
            **prepare,
        }
    }
    path = tmp_path / "prepare.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(SparkdlConfig, files=[path]).prepare


def _csv_dir(tmp_path: Path, df: pd.DataFrame, parts: int = 2) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    bounds = np.linspace(0, len(df), parts + 1).astype(int)
    for i in range(parts):
        df.iloc[bounds[i] : bounds[i + 1]].to_csv(raw / f"part{i}.csv", index=False)
    return raw


def _jobs(spark) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


def test_csv_defects_quarantined_with_exact_accounting(spark, tmp_path: Path) -> None:
    raw = _csv_dir(tmp_path, _frame(3000))
    (raw / "empty.csv").write_text("")
    with open(raw / "part1.csv", "a") as f:
        f.write("9001,1.0,2.0\n")  # too few fields
        f.write("9002,1.0,2.0,3.0,a,1,EXTRA\n")  # too many fields
        f.write("9003,abc,2.0,3.0,a,1\n")  # unparseable number
        f.write("9004,NaN,2.0,3.0,a,1\n")  # NaN
        f.write("9005,1.0,inf,3.0,b,0\n")  # infinity
        f.write("9006,1.0,2.0,3.0,a,7\n")  # label outside the declared set
        f.write("9007,1.0,2.0,3.0,a,\n")  # null label
        f.write(",1.0,2.0,3.0,a,1\n")  # null id
        f.write("9009,,2.0,3.0,,1\n")  # nulls in optional features: valid, imputed
    result = run_prepare(spark, cfg=_cfg(tmp_path, raw))
    assert result.rows_in == 3009
    assert result.rows_quarantined == 8
    assert result.rows_valid == 3001
    assert result.rows_in == result.rows_valid + result.rows_quarantined
    assert sum(result.split_rows.values()) == result.rows_valid
    ds = open_dataset(spark, str(tmp_path / "out"))
    assert ds.manifest.quarantine.by_reason == {
        "malformed_row:too_few_fields": 1,
        "malformed_row:too_many_fields": 1,
        "unparseable:x0": 1,
        "non_finite:x0": 1,
        "non_finite:x1": 1,
        "label_not_declared": 1,
        "null_required:label": 1,
        "null_required:id": 1,
    }
    quarantine = pq.read_table(f"{ds.path.removeprefix('file:')}/quarantine").to_pandas()
    assert len(quarantine) == 8
    assert set(quarantine["source_file"].str.rsplit("/", n=1).str[-1]) == {"part1.csv"}
    assert quarantine.loc[quarantine["id"] == "9006", "reason"].item() == "label_not_declared"
    # Every valid row is published exactly once.
    published = pd.concat(
        pq.read_table(ds.split_path(s).removeprefix("file:")).to_pandas()
        for s in ds.manifest.splits
    )
    assert len(published) == 3001 and published["id"].is_unique
    assert 9009 in set(published["id"])
    assert published["features"].map(len).eq(ds.feature_dim).all()
    assert np.isfinite(np.stack(published["features"].to_numpy())).all()


def test_missing_and_unexpected_columns_fail_before_any_job(spark, tmp_path: Path) -> None:
    raw = _csv_dir(tmp_path, _frame(100).drop(columns=["x2"]).assign(extra=1))
    before = _jobs(spark)
    with pytest.raises(ValueError, match=r"missing \['x2'\], unexpected \['extra'\]") as info:
        run_prepare(spark, cfg=_cfg(tmp_path, raw))
    assert "Expected (declared): ['id', 'label', 'x0', 'x1', 'x2', 'c0']" in str(info.value)
    assert "prepare.columns.ignore" in str(info.value)
    assert _jobs(spark) == before
    cfg = _cfg(tmp_path, raw, columns={**COLUMNS, "numeric": ["x0", "x1"], "ignore": ["extra"]})
    assert run_prepare(spark, cfg=cfg).rows_valid == 100


def test_wrong_parquet_types_fail_before_any_job(spark, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _frame(200).assign(x1=lambda d: d.x1.astype(str)).to_parquet(raw / "a.parquet")
    before = _jobs(spark)
    with pytest.raises(ValueError, match=r"wrong types \[x1: expected a number, actual string\]"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw, fmt="parquet"))
    assert _jobs(spark) == before


def test_corrupt_parquet_file_is_named(spark, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _frame(300).to_parquet(raw / "a.parquet")
    (raw / "b.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(ValueError, match=r"cannot read input file .*b\.parquet") as info:
        run_prepare(spark, cfg=_cfg(tmp_path, raw, fmt="parquet"))
    assert "nothing was published" in str(info.value)
    assert not (tmp_path / "out" / "_CURRENT").exists()
    assert not list((tmp_path / "out" / "_staging").glob("*"))


def test_all_empty_input_is_refused(spark, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("")
    with pytest.raises(ValueError, match="all 1 input files are empty"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw))


def test_json_lines_with_a_malformed_record(spark, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _frame(400).to_json(raw / "a.json", orient="records", lines=True)
    with open(raw / "a.json", "a") as f:
        f.write('{"id": 77777, "x0": 1.0, "x1": \n')
    result = run_prepare(spark, cfg=_cfg(tmp_path, raw, fmt="json"))
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (401, 400, 1)
    by_reason = open_dataset(spark, str(tmp_path / "out")).manifest.quarantine.by_reason
    assert by_reason == {"malformed_json": 1}


def test_too_many_bad_rows_fails_with_counts_and_path(spark, tmp_path: Path) -> None:
    df = _frame(200).astype({"x0": str})
    df.loc[:9, "x0"] = "oops"
    raw = _csv_dir(tmp_path, df)
    with pytest.raises(TooManyBadRows, match=r"10 of 200 input rows \(5.00%\)") as info:
        run_prepare(spark, cfg=_cfg(tmp_path, raw, max_bad_fraction=0.01))
    kept = str(info.value).split("rejected rows are in ")[1].split(" ")[0]
    assert len(pq.read_table(kept.removeprefix("file:")).to_pandas()) == 10
    assert not (tmp_path / "out" / "_CURRENT").exists()
    assert run_prepare(spark, cfg=_cfg(tmp_path, raw, max_bad_fraction=0.06)).rows_quarantined == 10


def test_rerun_is_idempotent_and_force_reproduces_digests(spark, tmp_path: Path) -> None:
    raw = _csv_dir(tmp_path, _frame(2000), parts=3)
    cfg = _cfg(tmp_path, raw)
    first = run_prepare(spark, cfg=cfg)
    again = run_prepare(spark, cfg=cfg)
    assert again.skipped and again.version == first.version and again.digests == first.digests
    rebuilt = run_prepare(spark, cfg=cfg, force=True)
    assert not rebuilt.skipped and rebuilt.version != first.version
    assert rebuilt.digests == first.digests
    ds = open_dataset(spark, str(tmp_path / "out"))
    ids = pd.concat(
        pq.read_table(ds.split_path(s).removeprefix("file:")).to_pandas()["id"]
        for s in ds.manifest.splits
    )
    assert len(ids) == 2000 and ids.is_unique
    changed = run_prepare(
        spark, cfg=_cfg(tmp_path, raw, split={"train": 0.7, "validation": 0.15, "test": 0.15})
    )
    assert changed.version != rebuilt.version and changed.digests != rebuilt.digests


def test_crash_during_rerun_keeps_previous_version(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _csv_dir(tmp_path, _frame(1000))
    cfg = _cfg(tmp_path, raw)
    first = run_prepare(spark, cfg=cfg)
    calls = {"n": 0}
    real_write = prepare_mod.write_split

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash while writing the validation split")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(prepare_mod, "write_split", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_prepare(spark, cfg=cfg, force=True)
    ds = open_dataset(spark, str(tmp_path / "out"))
    assert ds.manifest.version == first.version
    assert {s: v.digest for s, v in ds.manifest.splits.items()} == first.digests
    assert spark.read.parquet(ds.split_path("train")).count() == first.split_rows["train"]
    assert not list((tmp_path / "out" / "_staging").glob("*"))


def test_readers_refuse_unpublished_data(spark, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a prepared dataset"):
        open_dataset(spark, str(tmp_path))
    raw = _csv_dir(tmp_path, _frame(500))
    run_prepare(spark, cfg=_cfg(tmp_path, raw))
    version = Path(glob.glob(str(tmp_path / "out" / "versions" / "*"))[0])
    (version / "_SUCCESS").unlink()
    with pytest.raises(ValueError, match="has no _SUCCESS"):
        open_dataset(spark, str(tmp_path / "out"))
    with pytest.raises(ValueError, match="has no _SUCCESS"):
        open_dataset(spark, str(version))


def test_split_is_deterministic_and_independent_of_partitioning(spark) -> None:
    from pyspark.sql import functions as F

    base = spark.range(20000).withColumn("id", F.col("id").cast("string"))
    cfg = load_config(SparkdlConfig).prepare.split

    def assignment(df):
        return {
            r["id"]: r["split"]
            for r in assign_split(df, key_columns=["id"], split=cfg).select("id", "split").collect()
        }

    one = assignment(base.repartition(1))
    seven = assignment(base.repartition(7, "id"))
    assert one == seven
    counts = pd.Series(one).value_counts(normalize=True)
    assert abs(counts["train"] - 0.8) < 0.02 and abs(counts["test"] - 0.1) < 0.02


def test_featurizer_sees_only_training_rows(spark, tmp_path: Path) -> None:
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import StandardScalerModel, StringIndexerModel
    from pyspark.sql import functions as F

    df = _frame(3000)
    ids = spark.createDataFrame(df[["id"]].astype({"id": str}))
    held_out = {
        int(r["id"])
        for r in assign_split(
            ids, key_columns=["id"], split=load_config(SparkdlConfig).prepare.split
        )
        .where(F.col("split") != "train")
        .collect()
    }
    mask = df["id"].isin(held_out)
    df.loc[mask, "x0"] = 1000.0  # outliers only outside the training split
    df.loc[mask, "c0"] = "only_held_out"  # a category the featurizer must never learn
    result = run_prepare(spark, cfg=_cfg(tmp_path, _csv_dir(tmp_path, df)))
    assert result.split_rows["train"] == 3000 - len(held_out)
    model = PipelineModel.load(open_dataset(spark, str(tmp_path / "out")).featurizer_path)
    scaler = next(s for s in model.stages if isinstance(s, StandardScalerModel))
    assert abs(scaler.mean[0] - df.loc[~mask, "x0"].mean()) < 1e-6
    indexer = next(s for s in model.stages if isinstance(s, StringIndexerModel))
    assert "only_held_out" not in indexer.labels


@pytest.mark.parametrize("workers", [2, 3])
def test_row_groups_are_balanced_across_ranks(spark, tmp_path: Path, workers: int) -> None:
    raw = _csv_dir(tmp_path, _frame(30000))
    cfg = _cfg(tmp_path, raw, layout={"workers": workers, "target_row_group_mb": 0.05})
    run_prepare(spark, cfg=cfg)
    ds = open_dataset(spark, str(tmp_path / "out"))
    train = ds.manifest.splits["train"]
    files = sorted(glob.glob(ds.split_path("train").removeprefix("file:") + "/*.parquet"))
    groups = [pq.ParquetFile(f).metadata.num_row_groups for f in files]
    assert groups == [1] * len(files)  # one row group per file
    assert len(files) % workers == 0 and len(files) >= 2 * workers
    assert train.row_groups == len(files)
    shares = train.rank_rows
    assert sum(shares) == train.rows and len(shares) == workers
    assert max(shares) / min(shares) < 1.05
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"


def test_prepare_job_on_generated_data(spark, tmp_path: Path, repo: Path) -> None:
    import os
    import subprocess
    import sys

    from sparkdl.data.generate import write_generated

    cfg = load_config(SparkdlConfig, files=[repo / "conf" / "local.yaml"])
    raw = tmp_path / "raw"
    write_generated(
        spark,
        cfg=load_config(
            SparkdlConfig,
            files=[repo / "conf" / "local.yaml"],
            overrides=["generate.rows=4000", f"generate.output={raw}"],
        ).generate,
    )
    args = [
        sys.executable,
        "jobs/prepare_data.py",
        "--config",
        "conf/local.yaml",
        "--set",
        f"prepare.input.path={raw}",
        "--set",
        f"prepare.output={tmp_path / 'out'}",
        "--set",
        "spark.cores=1",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.run(
        args, cwd=repo, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "published" in first.stdout and "4000 rows in, 4000 valid, 0 quarantined" in first.stdout
    ds = open_dataset(spark, str(tmp_path / "out"))
    assert ds.feature_dim == len(cfg.prepare.columns.numeric) + 2 * (6 + 1)  # one-hot + unseen slot
    assert sum(ds.rows(s) for s in ds.manifest.splits) == 4000
    second = subprocess.run(
        args, cwd=repo, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert second.returncode == 0 and second.stdout.startswith("already published")
    bad = subprocess.run(
        [*args, "--set", "prepare.columns.numeric=[x0, x1, nope]"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert "missing ['nope']" in bad.stderr


def test_typed_columns_enter_featurization_in_one_projection(spark) -> None:
    # a projection per column made Spark analyse and optimise a plan as deep as the input was
    # wide (12,000 rows of 256 columns: 102 s to fit, 44 s to write each split)
    from sparkdl.config.data import ColumnsConfig
    from sparkdl.data.validate import parse_valid, parsed_name

    names = [f"x{i}" for i in range(64)]
    values = [str(i) for i in range(64)] + [float(i) for i in range(64)] + ["b "]
    df = spark.createDataFrame([values], [*names, *map(parsed_name, names), "c"]).select("*")
    cols = ColumnsConfig(label="x0", numeric=tuple(names[1:]), categorical=("c",))
    out = parse_valid(df, columns=cols)
    projects = out._jdf.queryExecution().analyzed().toString().count("Project [")
    assert projects <= df._jdf.queryExecution().analyzed().toString().count("Project [") + 1
    row = out.first()
    assert row["x5"] == 5.0 and row["x63"] == 63.0 and row["c"] == "b"
