"""The published-dataset format and its reader side: manifests, digests, pointer, versions.

Layout of a dataset root::

    <root>/_CURRENT                 JSON pointer to the published version (replaced atomically)
    <root>/versions/<version>/      train/ validation/ test/ quarantine/ featurizer/
                                    manifest.json, then _SUCCESS (written last)
    <root>/_staging/<token>/        a run in progress (never read)

Readers go through :func:`open_dataset`, which refuses anything without ``_SUCCESS`` and
``manifest.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.data.fs import HadoopFS
from sparkdl.data.manifest import MANIFEST, DatasetManifest, SplitInfo, read_manifest
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

POINTER = "_CURRENT"
SUCCESS = "_SUCCESS"
VERSIONS = "versions"
_U64 = 1 << 64


def content_digest(df: DataFrame) -> tuple[int, str]:
    """Return (rows, digest) of a DataFrame's content, independent of row order and files.

    The digest is the count and the sum modulo 2^64 of a 64-bit hash of every row.

    Examples
    --------
    >>> content_digest(spark.range(3))  # doctest: +SKIP
    (3, '3:...')
    """
    from pyspark.sql import functions as F

    cols = [F.col(f"`{c}`") for c in df.columns]
    row = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("s"),
    ).first()
    n = int(row["n"])
    total = int(row["s"] or 0) % _U64
    return n, f"{n}:{total:016x}"


def read_published_manifest(fs: HadoopFS, version_path: str) -> DatasetManifest:
    """Read and check ``manifest.json`` of one version folder, refusing unpublished ones."""
    if not fs.exists(f"{version_path}/{SUCCESS}"):
        raise BadInputError(
            f"{version_path} has no {SUCCESS}: it was never published or its run crashed. "
            "Run `sparkdl prepare` again; readers only use published versions."
        )
    if not fs.exists(f"{version_path}/{MANIFEST}"):
        raise BadInputError(f"{version_path} has no {MANIFEST}; run `sparkdl prepare` again")
    return read_manifest(fs, version_path)


@dataclass(frozen=True)
class PreparedDataset:
    """A published, verified dataset version."""

    root: str
    path: str
    manifest: DatasetManifest

    @property
    def feature_dim(self) -> int:
        """Length of the ``features`` arrays."""
        return self.manifest.features.dim

    @property
    def feature_names(self) -> list[str]:
        """Name of each position of ``features``."""
        return list(self.manifest.features.names)

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.manifest.task

    @property
    def num_classes(self) -> int:
        """Number of label values of a classification task (1 for regression)."""
        if self.task == "regression":
            return 1
        return len(self.manifest.label_values or ())

    def split(self, split: str) -> SplitInfo:
        """What the manifest says about one split (refused when the dataset has no such split)."""
        if split not in self.manifest.splits:
            raise BadInputError(
                f"split {split!r} is not in {self.path}; it has {sorted(self.manifest.splits)}"
            )
        return self.manifest.splits[split]

    def split_path(self, split: str) -> str:
        """Folder of one split's Parquet files."""
        return f"{self.path}/{self.split(split).path}"

    def rank_rows(self, split: str, workers: int) -> list[int]:
        """Rows each of ``workers`` ranks reads from a split (row groups dealt round-robin).

        Raises
        ------
        ValueError
            When the split has fewer row groups than ranks (some rank would get none).
        """
        from sparkdl.data.layout import rank_shares

        groups = self.split(split).group_rows
        if len(groups) < workers:
            raise BadInputError(
                f"split {split!r} of {self.path} has {len(groups)} row groups, fewer than "
                f"launch.num_workers={workers}; prepare it with prepare.layout.workers={workers}"
            )
        return rank_shares(groups, workers)

    def rows(self, split: str) -> int:
        """Row count of one split, from the manifest."""
        return self.split(split).rows

    def read(self, spark: SparkSession, split: str) -> DataFrame:
        """Read one split as a DataFrame (``features``, ``label`` and the id, if any)."""
        return spark.read.parquet(self.split_path(split))

    @property
    def featurizer_path(self) -> str:
        """Folder of the fitted Spark ML PipelineModel for inference."""
        return f"{self.path}/{self.manifest.featurizer}"


def open_dataset(spark: SparkSession, path: str) -> PreparedDataset:
    """Open the published version of a dataset root (or one version folder directly).

    Raises
    ------
    ValueError
        When there is no published version, or ``_SUCCESS`` or ``manifest.json`` is missing.

    Examples
    --------
    >>> ds = open_dataset(spark, "data/prepared/classification")  # doctest: +SKIP
    >>> ds.rows("train")  # doctest: +SKIP
    80123
    """
    fs = HadoopFS(spark)
    root = fs.qualify(path).rstrip("/")
    if fs.exists(f"{root}/{POINTER}"):
        pointer = json.loads(fs.read_text(f"{root}/{POINTER}"))
        version_path = f"{root}/{VERSIONS}/{pointer['version']}"
        if not fs.exists(version_path):
            raise BadInputError(
                f"{root}/{POINTER} points at {pointer['version']}, which is missing; run "
                "`sparkdl prepare` again to publish a version"
            )
    elif fs.exists(f"{root}/{MANIFEST}") or fs.exists(f"{root}/{SUCCESS}"):
        version_path, root = root, root.rsplit(f"/{VERSIONS}/", 1)[0]
    else:
        raise BadInputError(
            f"{root} is not a prepared dataset: it has no {POINTER} pointer and no {MANIFEST} and "
            f"{SUCCESS}. Run `sparkdl prepare --set prepare.output={path}` first."
        )
    manifest = read_published_manifest(fs, version_path)
    return PreparedDataset(root=root, path=version_path, manifest=manifest)
