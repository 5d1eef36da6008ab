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
class Block:
    """One partition's rows: the main split, and slices of held-out splits riding along.

    Held-out rows travel with the training rows of the same partition so that one Spark job
    can evaluate the current model and train the next epoch.
    """

    part: int
    x: Any
    y: Any
    held_out: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class Blocks:
    """A cached RDD of :class:`Block`, one per partition."""

    rdd: RDD[Block]
    rows: int
    held_out_rows: dict[str, int]
    dim: int
    partitions: int

    def unpersist(self) -> None:
        """Drop the cached blocks."""
        self.rdd.unpersist()


def load_blocks(
    spark: SparkSession,
    dataset: PreparedDataset,
    split: str,
    *,
    partitions: int,
    held_out: Sequence[str] = (),
) -> Blocks:
    """Plan one split (and optional held-out splits) of a prepared dataset as ``partitions``
    numpy blocks, read on the executors and cached at first use.

    No Spark job runs here: row counts come from the manifest.

    Examples
    --------
    >>> blocks = load_blocks(spark, open_dataset(spark, "data/prepared/x"), "train",
    ...                      partitions=4, held_out=["test"])  # doctest: +SKIP
    >>> blocks.rows, blocks.held_out_rows  # doctest: +SKIP
    (160000, {'test': 20000})
    """
    from pyspark import StorageLevel

    def files(name: str) -> list[tuple[str, int]]:
        base = dataset.split_path(name)
        return [
            (f"{base}/{f['name']}", int(f["rows"]))
            for f in dataset.manifest["splits"][name]["files"]
        ]

    main = plan_slices(files(split), partitions)
    extra = {name: _plan_some(files(name), partitions) for name in held_out}
    dim = dataset.feature_dim
    label_dtype = "float64" if dataset.task == "regression" else "int64"
    tasks = [(p, main[p], {n: plan[p] for n, plan in extra.items()}) for p in range(partitions)]

    def load(it: Any) -> Any:
        for part, slices, others in it:
            x, y = read_slices(slices, dim=dim, label_dtype=label_dtype)
            rest = {
                n: read_slices(s, dim=dim, label_dtype=label_dtype) for n, s in others.items() if s
            }
            yield Block(part, x, y, rest)

    rdd = spark.sparkContext.parallelize(tasks, partitions).mapPartitions(load)
    rdd = rdd.setName(f"sparkdl blocks {dataset.path} {split}").persist(StorageLevel.MEMORY_ONLY)
    return Blocks(
        rdd=rdd,
        rows=sum(rows for _, rows in files(split)),
        held_out_rows={n: sum(r for _, r in files(n)) for n in held_out},
        dim=dim,
        partitions=partitions,
    )


def _plan_some(files: list[tuple[str, int]], partitions: int) -> list[list[Slice]]:
    """Like :func:`plan_slices`, but a split smaller than ``partitions`` leaves some empty."""
    total = sum(rows for _, rows in files)
    if total >= partitions:
        return plan_slices(files, partitions)
    plan = plan_slices(files, total) if total else []
    return plan + [[] for _ in range(partitions - len(plan))]
