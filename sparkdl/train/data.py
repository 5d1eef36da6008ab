"""Per-rank tf.data pipelines over a prepared dataset, read with petastorm by row group."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


def petastorm_url(path: str) -> str:
    """Turn a Hadoop-style path (``file:/x``) into the URL petastorm wants (``file:///x``).

    Examples
    --------
    >>> petastorm_url("file:/tmp/d/train")
    'file:///tmp/d/train'
    >>> petastorm_url("hdfs://nn:8020/d")
    'hdfs://nn:8020/d'
    """
    if path.startswith("file:") and not path.startswith("file://"):
        return "file://" + path[len("file:") :]
    if path.startswith("/"):
        return "file://" + path
    return path


def steps_per_epoch(rank_rows: Sequence[int], batch_size: int) -> int:
    """Steps every rank runs per epoch: the smallest shard's full batches (at least 1).

    All ranks run the same number of steps, so none waits in an all-reduce for a peer that
    has run out of data; per epoch each rank skips its shard's remainder beyond
    ``steps * batch_size`` rows (a different part each epoch, as row groups are reshuffled).

    Examples
    --------
    >>> steps_per_epoch([1000, 1040], 64)
    15
    """
    return max(1, min(rank_rows) // batch_size)


@contextlib.contextmanager
def rank_dataset(
    url: str,
    *,
    rank: int,
    size: int,
    batch_size: int,
    shuffle_buffer: int,
    seed: int,
    reader_workers: int,
    training: bool,
) -> Iterator[Any]:
    """Yield an endless tf.data dataset of ``(features, label)`` batches for one rank's shard.

    Examples
    --------
    >>> with rank_dataset(url, rank=0, size=2, batch_size=64, shuffle_buffer=1000, seed=1,
    ...                   reader_workers=1, training=True) as ds:  # doctest: +SKIP
    ...     model.fit(ds, steps_per_epoch=10)
    """
    import tensorflow as tf
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    with make_batch_reader(
        url,
        cur_shard=rank,
        shard_count=size,
        num_epochs=None,
        shuffle_row_groups=training,
        seed=seed + rank,
        schema_fields=["features", "label"],
        workers_count=reader_workers,
        reader_pool_type="thread",
    ) as reader:
        ds = make_petastorm_dataset(reader).unbatch()
        if training and shuffle_buffer:
            ds = ds.shuffle(shuffle_buffer, seed=seed + rank)
        ds = ds.batch(batch_size, drop_remainder=True).map(
            lambda row: (row.features, row.label), num_parallel_calls=tf.data.AUTOTUNE
        )
        yield ds.prefetch(tf.data.AUTOTUNE)


def load_shard(url: str, *, rank: int, size: int, reader_workers: int) -> tuple[Any, Any]:
    """Read one rank's row groups into memory once: ``(features, labels)`` numpy arrays.

    Examples
    --------
    >>> x, y = load_shard(url, rank=0, size=2, reader_workers=1)  # doctest: +SKIP
    """
    import numpy as np
    from petastorm import make_batch_reader

    xs, ys = [], []
    with make_batch_reader(
        url,
        cur_shard=rank,
        shard_count=size,
        num_epochs=1,
        shuffle_row_groups=False,
        schema_fields=["features", "label"],
        workers_count=reader_workers,
    ) as reader:
        for batch in reader:
            xs.append(np.asarray(batch.features, dtype=np.float32))
            ys.append(np.asarray(batch.label))
    return np.concatenate(xs), np.concatenate(ys)


def memory_dataset(x: Any, y: Any, *, batch_size: int, seed: int, training: bool) -> Any:
    """An endless tf.data dataset of batches over arrays already in memory."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.repeat().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
