"""Verification of a written split: re-read it, count and digest it, record its row groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkdl.data.dataset import content_digest
from sparkdl.data.footer import row_group_rows
from sparkdl.data.fs import HadoopFS
from sparkdl.data.layout import rank_shares
from sparkdl.data.manifest import SplitFile, SplitInfo

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def verify_split(
    spark: SparkSession, fs: HadoopFS, path: str, *, expected: int, workers: int
) -> SplitInfo:
    """Re-read a written split: rows must match the staged count; record files and row groups."""
    rows, digest = content_digest(spark.read.parquet(path))
    if rows != expected:
        raise RuntimeError(
            f"verification failed for {path}: wrote {rows} rows, staged {expected}; nothing was "
            "published (a file system that lost writes?)"
        )
    files = []
    groups: list[int] = []
    for info in fs.list_files(path):
        rg = row_group_rows(spark, info.path)
        files.append(
            SplitFile(
                name=info.path.rsplit("/", 1)[-1],
                rows=sum(rg),
                row_groups=tuple(rg),
                bytes=info.size,
            )
        )
        groups.extend(rg)
    return SplitInfo(
        path=path.rsplit("/", 1)[-1],
        rows=rows,
        digest=digest,
        files=tuple(files),
        row_groups=len(groups),
        rank_rows=tuple(rank_shares(groups, workers)),
    )
