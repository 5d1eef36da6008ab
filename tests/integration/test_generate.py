"""The synthetic data generator on real Spark: determinism, planted signal, noise, blobs, writing."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import functions as sf

from sparkdl.config import GenerateConfig
from sparkdl.data.generate import blob_centers, generate_frame, write_generated

pytestmark = pytest.mark.integration

SMALL = replace(GenerateConfig(), rows=2000)
BLOBS = replace(
    GenerateConfig(), kind="blobs", rows=20000, clusters=4, numeric_features=3, cluster_std=1.0
)


def _fingerprint(df: Any) -> tuple[int, int]:
    """(row count, order-free sum of per-row hashes) of a frame."""
    row = df.agg(sf.count("*"), sf.sum(sf.xxhash64(*df.columns))).first()
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("kind", ["classification", "blobs"])
def test_same_seed_gives_same_rows_for_any_partition_count(spark: Any, kind: str) -> None:
    one = generate_frame(spark, cfg=replace(SMALL, kind=kind, partitions=1))
    three = generate_frame(spark, cfg=replace(SMALL, kind=kind, partitions=3))
    assert one.rdd.getNumPartitions() == 1
    assert three.rdd.getNumPartitions() == 3
    assert _fingerprint(one) == _fingerprint(three)
    assert one.orderBy("id").collect() == three.orderBy("id").collect()

    other = generate_frame(spark, cfg=replace(SMALL, kind=kind, partitions=3, seed=8))
    assert _fingerprint(other)[1] != _fingerprint(one)[1]
    first, second = one.orderBy("id").collect(), other.orderBy("id").collect()
    assert sum(a.x0 != b.x0 for a, b in zip(first, second, strict=True)) == len(first)


def test_classification_columns_labels_and_moments(spark: Any) -> None:
    cfg = replace(GenerateConfig(), rows=20000)
    df = generate_frame(spark, cfg=cfg)
    assert df.columns == ["id", *[f"x{i}" for i in range(8)], "c0", "c1", "label"]
    assert dict(df.dtypes)["id"] == "bigint"
    assert dict(df.dtypes)["label"] == "int"
    counts = dict(df.groupBy("label").count().collect())
    assert set(counts) == {0, 1}
    assert all(0.3 < n / cfg.rows < 0.7 for n in counts.values()), counts
    for c in ("c0", "c1"):
        values = {r[0] for r in df.select(c).distinct().collect()}
        assert values == {f"v{k}" for k in range(cfg.categories)}
    stats = df.agg(
        *[sf.mean(f"x{i}").alias(f"m{i}") for i in range(8)],
        *[sf.stddev(f"x{i}").alias(f"s{i}") for i in range(8)],
    ).first()
    for i in range(8):
        assert abs(stats[f"m{i}"]) < 0.03, (i, stats[f"m{i}"])
        assert abs(stats[f"s{i}"] - 1.0) < 0.03, (i, stats[f"s{i}"])


def test_multiclass_labels_cover_every_class(spark: Any) -> None:
    df = generate_frame(spark, cfg=replace(SMALL, classes=4, label_noise=0.0))
    counts = dict(df.groupBy("label").count().collect())
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 0.1 * SMALL.rows, counts


def test_label_noise_flips_that_fraction_and_keeps_features(spark: Any) -> None:
    cfg = replace(GenerateConfig(), rows=20000, label_noise=0.0)
    clean = generate_frame(spark, cfg=cfg).alias("a")
    noisy = generate_frame(spark, cfg=replace(cfg, label_noise=0.2)).alias("b")
    row = (
        clean.join(noisy, "id")
        .agg(
            sf.mean((sf.col("a.label") != sf.col("b.label")).cast("double")).alias("changed"),
            sf.sum((sf.col("a.x3") != sf.col("b.x3")).cast("int")).alias("x_diff"),
            sf.sum((sf.col("a.c1") != sf.col("b.c1")).cast("int")).alias("c_diff"),
            sf.count("*").alias("n"),
        )
        .first()
    )
    assert row.n == cfg.rows
    assert abs(row.changed - 0.2) < 0.03, row.changed
    assert row.x_diff == 0
    assert row.c_diff == 0


def test_planted_signal_is_nonlinear(spark: Any) -> None:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    cfg = replace(GenerateConfig(), rows=20000, label_noise=0.0)
    pdf = generate_frame(spark, cfg=cfg).toPandas()
    features = pd.get_dummies(pdf.drop(columns=["id", "label"]), dtype=float)
    train, test = pdf["id"] < 14000, pdf["id"] >= 14000
    y = pdf["label"]
    linear = LogisticRegression(max_iter=1000).fit(features[train], y[train])
    trees = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(
        features[train], y[train]
    )
    linear_acc = linear.score(features[test], y[test])
    trees_acc = trees.score(features[test], y[test])
    assert trees_acc > 0.85, trees_acc
    assert trees_acc - linear_acc > 0.15, (linear_acc, trees_acc)


def test_blob_means_match_the_known_centres(spark: Any) -> None:
    df = generate_frame(spark, cfg=BLOBS)
    assert df.columns == ["id", "x0", "x1", "x2", "label"]
    centers = blob_centers(BLOBS)
    assert centers.shape == (4, 3)
    assert np.all(np.abs(centers) <= BLOBS.center_box)
    means = df.groupBy("label").agg(*[sf.mean(f"x{i}") for i in range(3)], sf.count("*")).collect()
    assert sorted(r[0] for r in means) == [0, 1, 2, 3]
    for r in means:
        assert r[4] > 0.2 * BLOBS.rows
        np.testing.assert_allclose(list(r[1:4]), centers[r[0]], atol=0.1)


def test_csv_output_has_a_header_and_every_row(spark: Any, tmp_path: Path) -> None:
    cfg = replace(SMALL, output=str(tmp_path / "csv"), format="csv")
    result = write_generated(spark, cfg=cfg)
    back = spark.read.csv(cfg.output, header=True)
    assert back.columns == list(result.columns)
    assert back.count() == cfg.rows == result.rows
    # Every value survives the text round trip (doubles are written in shortest exact form).
    expected = generate_frame(spark, cfg=cfg)
    typed = back.select(*[sf.col(c).cast(t) for c, t in expected.dtypes])
    assert _fingerprint(typed) == _fingerprint(expected)
    assert result.format == "csv"
    assert result.partitions == spark.sparkContext.defaultParallelism
    assert result.centers is None
    assert result.seconds > 0


def test_parquet_output_row_count_and_overwrite(spark: Any, tmp_path: Path) -> None:
    cfg = replace(SMALL, output=str(tmp_path / "pq"), format="parquet", partitions=3)
    result = write_generated(spark, cfg=cfg)
    assert result.partitions == 3
    assert len(list((tmp_path / "pq").glob("part-*.snappy.parquet"))) == 3
    assert spark.read.parquet(cfg.output).count() == cfg.rows
    write_generated(spark, cfg=replace(cfg, rows=500))  # overwrite=True replaces the data
    assert spark.read.parquet(cfg.output).count() == 500


def test_existing_output_without_overwrite_raises(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    cfg = replace(SMALL, output=str(tmp_path / "taken"), overwrite=False)
    with pytest.raises(ValueError, match=r"generate\.overwrite=true") as err:
        write_generated(spark, cfg=cfg)
    assert "generate.output" in str(err.value)
    assert str(tmp_path / "taken") in str(err.value)


def test_bad_seed_raises(spark: Any) -> None:
    with pytest.raises(ValueError, match=r"generate\.seed is -1"):
        generate_frame(spark, cfg=replace(SMALL, seed=-1))


def test_blobs_write_centres_json(spark: Any, tmp_path: Path) -> None:
    cfg = replace(BLOBS, rows=1000, output=str(tmp_path / "blobs"), format="parquet")
    result = write_generated(spark, cfg=cfg)
    doc = json.loads((tmp_path / "blobs" / "_centers.json").read_text(encoding="utf-8"))
    assert (doc["seed"], doc["clusters"], doc["dim"]) == (cfg.seed, 4, 3)
    np.testing.assert_array_equal(np.array(doc["centers"]), blob_centers(cfg))
    np.testing.assert_array_equal(np.array(result.centers), blob_centers(cfg))
    back = spark.read.parquet(cfg.output)
    assert back.count() == cfg.rows


def test_generate_job_writes_the_rows(spark: Any, repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "g"
    proc = subprocess.run(
        [
            sys.executable,
            "jobs/generate_data.py",
            "--set",
            "generate.rows=1000",
            "--set",
            f"generate.output={out}",
            "--set",
            "spark.cores=1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=repo,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK: wrote 1000 classification rows" in proc.stdout
    assert spark.read.csv(str(out), header=True).count() == 1000
