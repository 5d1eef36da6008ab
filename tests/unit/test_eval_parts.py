"""Exact evaluation parts without Spark or Horovod: every row once, sums equal Keras's metrics,
and petastorm readers that close without printing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from sparkdl.train.data import eval_dataset, load_shard, petastorm_url
from sparkdl.train.evaluation import ShardScorer, finish_metrics


def _write(path: Path, rows: int, *, row_group: int, dim: int = 2, classes: int = 3) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    x[:, 0] = np.arange(rows)  # row ids
    table = pa.table(
        {
            "features": pa.array(list(x), type=pa.list_(pa.float32())),
            "label": pa.array(rng.integers(0, classes, rows), type=pa.int32()),
        }
    )
    pq.write_table(table, path / "part-0.parquet", row_group_size=row_group)
    return petastorm_url(str(path))


def _batches(url: str, *, rank: int, size: int, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with eval_dataset(url, rank=rank, size=size, batch_size=batch, reader_workers=2) as ds:
            return [(x.numpy(), y.numpy()) for x, y in ds]


def test_eval_dataset_gives_every_row_of_a_shard_once_with_a_short_last_batch(
    tmp_path: Path,
) -> None:
    url = _write(tmp_path / "d", 181, row_group=40)  # rank 0: 40+40+21 rows, rank 1: 40+40
    seen = []
    for rank, rows in ((0, 101), (1, 80)):
        batches = _batches(url, rank=rank, size=2, batch=32)
        sizes = [len(y) for _, y in batches]
        assert sum(sizes) == rows and all(s == 32 for s in sizes[:-1]) and 0 < sizes[-1] <= 32
        seen += [int(v) for x, _ in batches for v in x[:, 0]]
    assert sorted(seen) == list(range(181))  # both shards together: each row exactly once


def _model(dim: int, classes: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((dim,)),
            tf.keras.layers.Dense(8, activation="relu"),
            tf.keras.layers.Dense(classes),
        ]
    )
    loss = (
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if classes > 1
        else tf.keras.losses.MeanSquaredError()
    )
    model.compile(loss=loss, metrics=["accuracy"] if classes > 1 else ["mae"])
    return model


@pytest.mark.parametrize("classes", [3, 1])
def test_shard_sums_give_kerass_metrics_over_all_rows(tmp_path: Path, classes: int) -> None:
    url = _write(tmp_path / "d", 181, row_group=181)
    model = _model(2, classes)
    scorer = ShardScorer(model, classification=classes > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with eval_dataset(url, rank=0, size=1, batch_size=32, reader_workers=1) as ds:
            totals = scorer.totals(ds).numpy()
        x, y = load_shard(url, rank=0, size=1, reader_workers=1)
    if classes == 1:
        y = y.astype(np.float32)
    metrics, rows = finish_metrics(totals, classification=classes > 1)
    assert rows == 181
    # Keras over all 181 rows in one batch is the reference
    keras = model.evaluate(x, y, batch_size=181, verbose=0, return_dict=True)
    assert metrics.keys() == keras.keys()
    for key, value in keras.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key


def test_finish_metrics_weighs_rows_not_ranks() -> None:
    # rank 0: 100 rows, 90 right; rank 1: 10 rows, 0 right -> 90/110, not (0.9 + 0) / 2
    summed = np.array([0.0, 90.0, 100.0]) + np.array([0.0, 0.0, 10.0])
    metrics, rows = finish_metrics(summed, classification=True)
    assert rows == 110 and metrics["accuracy"] == pytest.approx(90 / 110)


def test_readers_close_without_petastorms_cache_message(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url = _write(tmp_path / "d", 100, row_group=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, _ = load_shard(url, rank=0, size=2, reader_workers=1)
        assert len(_batches(url, rank=1, size=2, batch=16)) == 4
    assert len(x) == 50
    out = capfd.readouterr()
    assert "Cache cleanup complete." not in out.out + out.err
