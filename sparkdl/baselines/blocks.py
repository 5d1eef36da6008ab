"""Load a prepared split once into numpy blocks, one per Spark partition, and keep them cached.

The manifest lists every file of a split with its row count, so the driver can cut the split
into ``partitions`` contiguous row ranges without a Spark job. Each task reads its ranges with
pyarrow straight from the files (as petastorm does for the trainer; ``file:``, ``hdfs:`` and
``s3:`` paths work through pyarrow's file systems), turns the ``features`` arrays into one
``float32`` matrix and the labels into a vector, and the RDD of blocks is persisted in memory.
Iterations then run over the cached blocks; only model-sized results reach the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession

    from sparkdl.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slice:
    """Rows ``[start, stop)`` of one Parquet file."""

    path: str
    start: int
    stop: int


def plan_slices(files: Sequence[tuple[str, int]], partitions: int) -> list[list[Slice]]:
    """Cut files of known row counts into ``partitions`` contiguous, near-equal row ranges.

    Examples
    --------
    >>> plan = plan_slices([("a", 5), ("b", 3)], 3)
    >>> [[(s.path, s.start, s.stop) for s in p] for p in plan]
    [[('a', 0, 2)], [('a', 2, 5)], [('b', 0, 3)]]
    >>> [[(s.path, s.start, s.stop) for s in p] for p in plan_slices([('a', 5), ('b', 3)], 2)]
    [[('a', 0, 4)], [('a', 4, 5), ('b', 0, 3)]]
    """
    total = sum(rows for _, rows in files)
    if partitions > total:
        raise ValueError(
            f"{partitions} partitions for {total} rows: every partition needs at least one row; "
            "lower the partitions setting"
        )
    bounds = [total * p // partitions for p in range(partitions + 1)]
    plan: list[list[Slice]] = [[] for _ in range(partitions)]
    offset = 0
    for path, rows in files:
        for p in range(partitions):
            lo, hi = max(bounds[p], offset), min(bounds[p + 1], offset + rows)
            if lo < hi:
                plan[p].append(Slice(path, lo - offset, hi - offset))
        offset += rows
    return plan


def read_slices(slices: Sequence[Slice], *, dim: int, label_dtype: str) -> tuple[Any, Any]:
    """Read row ranges of Parquet files into ``(features float32 [n, dim], labels)``."""
    import numpy as np
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    from sparkdl.train.data import petastorm_url

    xs, ys = [], []
    for s in slices:
        filesystem, path = pafs.FileSystem.from_uri(petastorm_url(s.path))
        table = pq.read_table(path, columns=["features", "label"], filesystem=filesystem)
        table = table.slice(s.start, s.stop - s.start)
        feats = table.column("features").combine_chunks()
        values = feats.flatten().to_numpy(zero_copy_only=False)
        if len(values) != len(table) * dim:
            raise ValueError(
                f"{s.path}: features arrays are not all of length {dim} as its manifest says; "
                "prepare the dataset again"
            )
        xs.append(values.astype(np.float32, copy=False).reshape(len(table), dim))
        ys.append(table.column("label").to_numpy().astype(label_dtype, copy=False))
    return np.concatenate(xs), np.concatenate(ys)


@dataclass(frozen=True)
class Blocks:
    """A cached RDD of ``(partition, features, labels)`` blocks of one split."""

    rdd: RDD[tuple[int, Any, Any]]
    rows: int
    dim: int
    partitions: int

    def unpersist(self) -> None:
        """Drop the cached blocks."""
        self.rdd.unpersist()


def load_blocks(
    spark: SparkSession, dataset: PreparedDataset, split: str, *, partitions: int
) -> Blocks:
    """Load one split of a prepared dataset as ``partitions`` cached numpy blocks.

    Examples
    --------
    >>> blocks = load_blocks(spark, open_dataset(spark, "data/prepared/x"), "train",
    ...                      partitions=4)  # doctest: +SKIP
    >>> blocks.rows  # doctest: +SKIP
    160000
    """
    from pyspark import StorageLevel

    base = dataset.split_path(split)
    files = [
        (f"{base}/{f['name']}", int(f["rows"])) for f in dataset.manifest["splits"][split]["files"]
    ]
    plan = plan_slices(files, partitions)
    dim = dataset.feature_dim
    label_dtype = "float64" if dataset.task == "regression" else "int64"

    def load(index: int, it: Any) -> Any:
        for slices in it:
            x, y = read_slices(slices, dim=dim, label_dtype=label_dtype)
            yield index, x, y

    rdd = spark.sparkContext.parallelize(plan, partitions).mapPartitionsWithIndex(load)
    rdd = rdd.setName(f"sparkdl blocks {dataset.path} {split}").persist(StorageLevel.MEMORY_ONLY)
    rows = rdd.map(lambda b: len(b[2])).sum()
    logger.info(
        "loaded %d rows of %s/%s into %d cached blocks", rows, dataset.path, split, partitions
    )
    return Blocks(rdd=rdd, rows=int(rows), dim=dim, partitions=partitions)
