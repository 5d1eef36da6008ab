"""Load a prepared split once into numpy blocks, one per Spark partition, and keep them cached.

The manifest lists every file of a split with its row count, so the driver can cut the split
into ``partitions`` contiguous row ranges without a Spark job. Each task reads its ranges with
pyarrow straight from the files (as petastorm does for the trainer; ``file:``, ``hdfs:`` and
``s3:`` paths work through pyarrow's file systems) and turns the ``features`` arrays into one
``float32`` matrix and the labels into a vector. The engines (:mod:`engine`) keep the blocks
in memory for the iterations; only model-sized results reach the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdl.errors import BadInputError

if TYPE_CHECKING:
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
        raise BadInputError(
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
            raise BadInputError(
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
class BlockPlan:
    """Which rows each partition loads: ``items[p] = (p, slices, {held-out split: slices})``."""

    name: str
    items: list[tuple[int, list[Slice], dict[str, list[Slice]]]]
    rows: int
    held_out_rows: dict[str, int]
    dim: int
    label_dtype: str

    @property
    def partitions(self) -> int:
        """Number of blocks."""
        return len(self.items)

    @property
    def part_rows(self) -> dict[int, int]:
        """Rows of each partition's main split, from the plan (no data read)."""
        return {part: sum(s.stop - s.start for s in slices) for part, slices, _ in self.items}


def build_block(
    item: tuple[int, list[Slice], dict[str, list[Slice]]], *, dim: int, label_dtype: str
) -> Block:
    """Read one planned block (runs in a task)."""
    part, slices, others = item
    x, y = read_slices(slices, dim=dim, label_dtype=label_dtype)
    rest = {n: read_slices(s, dim=dim, label_dtype=label_dtype) for n, s in others.items() if s}
    return Block(part, x, y, rest)


def plan_blocks(
    dataset: PreparedDataset, split: str, *, partitions: int, held_out: Sequence[str] = ()
) -> BlockPlan:
    """Plan one split (and optional held-out splits) of a prepared dataset as ``partitions``
    blocks. No Spark job runs: row counts come from the manifest.

    Examples
    --------
    >>> plan = plan_blocks(open_dataset(spark, "data/prepared/x"), "train", partitions=4,
    ...                    held_out=["test"])  # doctest: +SKIP
    >>> plan.rows, plan.held_out_rows  # doctest: +SKIP
    (160000, {'test': 20000})
    """

    def files(name: str) -> list[tuple[str, int]]:
        base = dataset.split_path(name)
        return [(f"{base}/{f.name}", f.rows) for f in dataset.split(name).files]

    main = plan_slices(files(split), partitions)
    extra = {name: _plan_some(files(name), partitions) for name in held_out}
    return BlockPlan(
        name=f"{dataset.path} {split}",
        items=[(p, main[p], {n: plan[p] for n, plan in extra.items()}) for p in range(partitions)],
        rows=sum(rows for _, rows in files(split)),
        held_out_rows={n: sum(r for _, r in files(n)) for n in held_out},
        dim=dataset.feature_dim,
        label_dtype="float64" if dataset.task == "regression" else "int64",
    )


def _plan_some(files: list[tuple[str, int]], partitions: int) -> list[list[Slice]]:
    """Like :func:`plan_slices`, but a split smaller than ``partitions`` leaves some empty."""
    total = sum(rows for _, rows in files)
    if total >= partitions:
        return plan_slices(files, partitions)
    plan = plan_slices(files, total) if total else []
    return plan + [[] for _ in range(partitions - len(plan))]
