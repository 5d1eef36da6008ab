"""Deterministic train/validation/test assignment by a salted hash of a stable row key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sparkdl.config.data import SplitConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEY = "_key"
SPLIT = "split"
SPLITS = ("train", "validation", "test")
_BUCKETS = 1_000_000


def assign_split(df: DataFrame, *, key_columns: Sequence[str], split: SplitConfig) -> DataFrame:
    """Add ``_key`` (a 64-bit hash of the row key) and ``split`` (train, validation or test).

    The key is the id column when one is declared, else the row's full raw content, so the same
    row always lands in the same split, whatever the partitioning, file order or run. Never
    ``rand()`` or ``monotonically_increasing_id()``: both change with the partitioning.

    Parameters
    ----------
    df : DataFrame
    key_columns : sequence of str
        Columns whose values identify a row.
    split : SplitConfig
        Fractions and the salt (change the salt to draw a different split).

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> assign_split(df, key_columns=["id"], split=SplitConfig())  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    key = F.xxhash64(F.lit(split.salt), *[F.col(f"`{c}`") for c in key_columns])
    bucket = F.pmod(key, F.lit(_BUCKETS)) / F.lit(float(_BUCKETS))
    train_end = split.train
    val_end = split.train + split.validation
    label = (
        F.when(bucket < F.lit(train_end), F.lit("train"))
        .when(bucket < F.lit(val_end), F.lit("validation"))
        .otherwise(F.lit("test"))
    )
    return df.withColumn(KEY, key).withColumn(SPLIT, label)
