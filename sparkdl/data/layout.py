"""Parquet layout for the training readers: balanced row groups for every rank.

petastorm shards a dataset by row group (rank r of W reads row groups r, r+W, r+2W, ...). So
each split is written as ``W * k`` files of one row group each, rows spread by the row-key hash:
every rank gets ``k`` row groups of nearly equal size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.data import LayoutConfig
from sparkdl.data.split import KEY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_MB = 1 << 20


@dataclass(frozen=True)
class LayoutPlan:
    """How many files (one row group each) a split is written as."""

    files: int
    rows_per_file: int
    block_bytes: int


def plan_layout(*, rows: int, row_bytes: int, cfg: LayoutConfig) -> LayoutPlan:
    """Choose a file count that is a multiple of ``cfg.workers`` with row groups near the target.

    Parameters
    ----------
    rows : int
        Rows in the split.
    row_bytes : int
        Estimated uncompressed bytes per row (features, label, id).
    cfg : LayoutConfig
        Workers, target row-group size and the minimum row groups per worker.

    Returns
    -------
    LayoutPlan

    Examples
    --------
    >>> plan_layout(rows=1_000_000, row_bytes=48, cfg=LayoutConfig(workers=2, target_row_group_mb=16))
    LayoutPlan(files=4, rows_per_file=250000, block_bytes=1073741824)
    """
    total = max(1, rows) * max(1, row_bytes)
    per_worker = max(
        cfg.min_row_groups_per_worker,
        math.ceil(total / (cfg.target_row_group_mb * _MB * cfg.workers)),
    )
    files = cfg.workers * per_worker
    # Never more files than rows: empty files would leave some ranks without data.
    if rows < files:
        files = max(1, rows // cfg.workers * cfg.workers) or 1
    # The row-group size limit sits far above the file size so each file is one row group.
    block = max(1 << 30, 4 * math.ceil(total / files))
    return LayoutPlan(files=files, rows_per_file=math.ceil(rows / files), block_bytes=block)


def write_split(df: DataFrame, *, path: str, plan: LayoutPlan) -> None:
    """Write one split: ``plan.files`` hash-partitioned, key-sorted files, snappy, one row group each.

    Examples
    --------
    >>> write_split(featurized, path="out/train", plan=plan)  # doctest: +SKIP
    """
    (
        df.repartition(plan.files, KEY)
        .sortWithinPartitions(KEY)
        .drop(KEY)
        .write.mode("overwrite")
        .option("compression", "snappy")
        .option("parquet.block.size", str(plan.block_bytes))
        .parquet(path)
    )


def rank_shares(row_groups: Sequence[int], workers: int) -> list[int]:
    """Rows each rank reads when row groups are dealt round-robin (petastorm's sharding).

    Examples
    --------
    >>> rank_shares([10, 11, 9, 10], 2)
    [19, 21]
    """
    shares = [0] * workers
    for i, rows in enumerate(row_groups):
        shares[i % workers] += rows
    return shares
