"""Trainer parts that need TensorFlow but no Spark: models, checkpoints, steps, early stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorflow as tf

from sparkdl.config.train import ModelConfig
from sparkdl.errors import BadInputError
from sparkdl.train.checkpoint import claim_fence, latest_checkpoint, write_checkpoint
from sparkdl.train.data import petastorm_url, steps_per_epoch
from sparkdl.train.worker import _should_stop


def build(cfg: ModelConfig, dim: int = 16, classes: int = 3):
    from sparkdl.train.models import build_model

    return build_model(cfg, input_dim=dim, num_classes=classes, seed=1)


def custom_model(*, input_dim: int, num_classes: int):
    """A user model for the `custom` kind (referenced as tests.unit.test_train_parts:custom_model)."""
    return tf.keras.Sequential([tf.keras.Input((input_dim,)), tf.keras.layers.Dense(num_classes)])


def test_mlp_shape_and_depth() -> None:
    model = build(ModelConfig(hidden=8, depth=3, dropout=0.2))
    assert model.output_shape == (None, 3)
    assert sum(isinstance(layer, tf.keras.layers.Dense) for layer in model.layers) == 4


def test_cnn_reshapes_features_into_images() -> None:
    model = build(ModelConfig(kind="cnn", image_shape=(4, 4), depth=2, filters=4))
    assert model.output_shape == (None, 3)
    assert any(isinstance(layer, tf.keras.layers.Conv2D) for layer in model.layers)
    with pytest.raises(ValueError, match="holds 9 values but the dataset's features have 16"):
        build(ModelConfig(kind="cnn", image_shape=(3, 3)))


def test_cnn_head_flattens_the_maps_into_dense_layers() -> None:
    # 16x16 -> conv 4 -> pool 8x8 -> conv 8 -> pool 4x4x8 = 128 -> 64 -> 32 -> 3 logits
    model = build(
        ModelConfig(kind="cnn", image_shape=(16, 16), depth=2, filters=4, head=(64, 32)), dim=256
    )
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [d.units for d in dense] == [64, 32, 3]
    assert dense[0].kernel.shape == (128, 64)
    convs = (1 * 9 + 1) * 4 + (4 * 9 + 1) * 8
    assert model.count_params() == convs + 128 * 64 + 64 + 64 * 32 + 32 + 32 * 3 + 3
    with pytest.raises(ValueError, match=r"train.model.head is \[64\]; .*kind is mlp"):
        ModelConfig(kind="mlp", head=(64,))
    with pytest.raises(ValueError, match=r"train.model.head is \[0\]"):
        ModelConfig(kind="cnn", image_shape=(4, 4), head=(0,))


def test_custom_model_by_name() -> None:
    model = build(
        ModelConfig(kind="custom", function="tests.unit.test_train_parts:custom_model"), classes=5
    )
    assert model.output_shape == (None, 5)
    with pytest.raises(ValueError, match="cannot be loaded"):
        build(ModelConfig(kind="custom", function="tests.unit.test_train_parts:nope"))
    # a function that raises is bad input (the same on every attempt), but an OSError may pass
    with pytest.raises(BadInputError, match=r"json:dumps' raised TypeError: dumps\(\) missing"):
        build(ModelConfig(kind="custom", function="json:dumps"))
    with pytest.raises(FileNotFoundError) as raised:
        build(ModelConfig(kind="custom", function="tests.unit.test_train_parts:weights_gone"))
    assert not isinstance(raised.value, BadInputError)


def weights_gone(*, input_dim: int, num_classes: int) -> tf.keras.Model:
    raise FileNotFoundError(f"/mnt/weights/{input_dim}x{num_classes}.h5")


def test_model_config_rules() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        ModelConfig(kind="custom")
    with pytest.raises(ValueError, match="height, width"):
        ModelConfig(kind="cnn")


def test_checkpoint_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    v = tf.Variable([1.0, 2.0])
    root = tmp_path / "ckpt"
    fence = claim_fence(str(root), attempt=0)
    for epoch in range(3):
        v.assign_add([1.0, 1.0])
        write_checkpoint(
            tf.train.Checkpoint(v=v),
            root=str(root),
            epoch=epoch,
            history=[{"epoch": e} for e in range(epoch + 1)],
            fence=fence,
        )
    info = latest_checkpoint(str(root))
    assert info is not None and info.epoch == 2 and len(info.history) == 3
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["epoch-0002"]
    restored = tf.Variable([0.0, 0.0])
    tf.train.Checkpoint(v=restored).read(info.path).assert_consumed()
    assert restored.numpy().tolist() == [4.0, 5.0]
    data = next(p for p in (root / "epoch-0002").iterdir() if p.name.startswith("ckpt.data"))
    data.write_bytes(data.read_bytes()[:-1] + b"\x00")
    with pytest.raises(BadInputError, match="does not match the checksums"):
        latest_checkpoint(str(root))
    assert json.loads((root / "checkpoint.json").read_text())["epoch"] == 2


def test_no_checkpoint_yet(tmp_path: Path) -> None:
    assert latest_checkpoint(str(tmp_path)) is None


def test_steps_and_urls() -> None:
    assert steps_per_epoch([100, 130], 32) == 3
    assert steps_per_epoch([10], 32) == 1
    assert petastorm_url("file:/a/b") == "file:///a/b"
    assert petastorm_url("/a/b") == "file:///a/b"


@pytest.mark.parametrize(
    ("losses", "patience", "stop"),
    [([1.0, 0.9, 0.95, 0.97], 2, True), ([1.0, 0.9, 0.95], 2, False), ([1.0, 2.0, 3.0], 0, False)],
)
def test_early_stopping(losses: list[float], patience: int, stop: bool) -> None:
    assert _should_stop([{"val_loss": v} for v in losses], patience=patience) is stop


def test_reseeding_dropout_replays_the_same_masks_without_a_retrace() -> None:
    from sparkdl.train.models import reseed_random_layers

    model = build(ModelConfig(hidden=32, depth=2, dropout=0.5), dim=8)
    x = tf.ones((64, 8))
    step = tf.function(lambda: model(x, training=True))
    assert reseed_random_layers(model, seed=7)
    first, second = step().numpy(), step().numpy()
    assert not (first == second).all()  # the stream moves on between calls...
    assert reseed_random_layers(model, seed=7)
    assert (step().numpy() == first).all()  # ...and restarts from the seed, same trace
    assert reseed_random_layers(model, seed=8)
    assert not (step().numpy() == first).all()
    assert step.experimental_get_tracing_count() == 1


def test_reseeding_refuses_random_layers_it_cannot_reset() -> None:
    from sparkdl.train.models import reseed_random_layers

    noisy = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.GaussianNoise(0.1)])
    assert not reseed_random_layers(noisy, seed=1)
    assert reseed_random_layers(build(ModelConfig(dropout=0.0)), seed=1)


def _draws_after(seed: int | None) -> list[float]:
    """A fresh op's draws, after TensorFlow's global seed was last set to ``seed``."""
    if seed is not None:
        tf.random.set_seed(seed)
    return tf.random.uniform([4]).numpy().tolist()


def test_an_epoch_start_leaves_tensorflows_seed_alone_unless_it_must_retrace() -> None:
    import numpy as np

    from sparkdl.config.train import TrainConfig
    from sparkdl.train.models import start_epoch

    cfg = TrainConfig(seed=11)
    model = build(ModelConfig(dropout=0.5), dim=8)
    model.train_function = "traced"
    tf.random.set_seed(123)
    start_epoch(model, cfg=cfg, epoch=2)
    # the global seed (whose setting clears TensorFlow's caches) was not touched: the draws
    # continue 123's sequence, not the epoch's seed's, and the step stays traced
    assert _draws_after(None) == _draws_after(123)
    assert model.train_function == "traced"
    assert np.random.randint(1 << 30) == np.random.RandomState(11 + 7919 * 2).randint(1 << 30)
    noisy = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.GaussianNoise(0.1)])
    noisy.train_function = "traced"
    start_epoch(noisy, cfg=cfg, epoch=2)  # its noise needs TensorFlow reseeded and a retrace
    assert _draws_after(None) == _draws_after(11 + 7919 * 2)
    assert noisy.train_function is None


def _one_rank_exchange() -> dict:
    """In a fresh process: a one-rank Horovod world's dense exchange of two tensors."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    from sparkdl.train.exchange import Traffic, make_exchange

    hvd.init()
    variables = [tf.Variable(tf.zeros([3, 2])), tf.Variable(tf.zeros([2]))]
    traffic = Traffic()
    exchange = make_exchange("none", variables, traffic, density=0.01, rank=4, seed=0)
    grads = [tf.reshape(tf.range(6.0), [3, 2]), tf.constant([7.0, 8.0])]
    out = tf.function(lambda: exchange(grads))()
    return {"out": [o.numpy().tolist() for o in out], **traffic.snapshot()}


def test_a_single_rank_hands_horovod_nothing() -> None:
    from sparkdl.launch.child import run_in_child

    got = run_in_child(_one_rank_exchange, env={}, label="[one rank]", timeout_s=120)
    assert got["out"] == [[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [7.0, 8.0]]  # its own average
    assert got["collectives"] == 0 and got["payload_bytes"] == 0


def _read_all(url: str, *, columnar: bool) -> tuple[list, list]:
    import warnings

    from petastorm import make_batch_reader

    from sparkdl.train.data import columnar_results

    xs, ys = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with make_batch_reader(
            url, num_epochs=1, shuffle_row_groups=False, schema_fields=["features", "label"]
        ) as reader:
            if columnar:
                assert columnar_results(reader)
            for batch in reader:
                xs.append(batch.features)
                ys.append(batch.label)
    return xs, ys


def test_columnar_results_equal_petastorms_own_conversion(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2500, 6)).astype(np.float32)
    table = pa.table(
        {
            "features": pa.array(list(x), type=pa.list_(pa.float32())),
            "label": pa.array(rng.integers(0, 3, 2500), type=pa.int32()),
        }
    )
    pq.write_table(table, tmp_path / "part-0.parquet", row_group_size=1000)  # 3 row groups
    url = petastorm_url(str(tmp_path))
    theirs, ours = _read_all(url, columnar=False), _read_all(url, columnar=True)
    assert [a.shape for a in ours[0]] == [(1000, 6), (1000, 6), (500, 6)]
    for a, b in zip(theirs[0] + theirs[1], ours[0] + ours[1], strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(ours[0]), x)


def _write_ids(path: Path, rows: int, *, row_group: int) -> str:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    ids = np.arange(rows, dtype=np.float32)
    table = pa.table(
        {
            "features": pa.array(list(np.stack([ids, -ids], 1)), type=pa.list_(pa.float32())),
            "label": pa.array(np.arange(rows) % 3, type=pa.int32()),
        }
    )
    pq.write_table(table, path / "part-0.parquet", row_group_size=row_group)
    return petastorm_url(str(path))


def _epoch_ids(url: str, *, rank: int, steps: int, batch: int, seed: int = 3) -> list[int]:
    import warnings

    from sparkdl.train.data import rank_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rank_dataset(
            url,
            rank=rank,
            size=2,
            batch_size=batch,
            steps=steps,
            shuffle_buffer=300,
            seed=seed,
            reader_workers=2,
            training=True,
        ) as ds:
            # the pipeline's generator runs on its own thread, not the training's inter-op pool
            assert ds.options().threading.private_threadpool_size == 1
            # no autotuning: destroying an autotuned iterator can hold fit up to a second
            assert ds.options().autotune.enabled is False
            out = [x[:, 0].numpy().astype(int).tolist() for x, _ in ds]
    assert all(len(b) == batch for b in out)
    return [i for b in out for i in b]


def test_rank_dataset_gives_exactly_the_epochs_steps_without_repeating_a_row(
    tmp_path: Path,
) -> None:
    from sparkdl.train.data import steps_per_epoch

    url = _write_ids(tmp_path / "d", 2300, row_group=500)  # rank 0: 3 groups, rank 1: 2
    steps = steps_per_epoch([1300, 1000], 64)
    seen = [_epoch_ids(url, rank=r, steps=steps, batch=64) for r in (0, 1)]
    assert [len(s) for s in seen] == [steps * 64, steps * 64]
    for ids in seen:
        assert len(set(ids)) == len(ids)  # no row twice in one epoch
    assert not set(seen[0]) & set(seen[1])  # the ranks' shards are disjoint
    # reshuffled per seed: another epoch sees another order
    assert _epoch_ids(url, rank=1, steps=steps, batch=64, seed=4) != seen[1]


def test_rank_dataset_opened_ahead_on_another_thread_gives_the_same_batches(
    tmp_path: Path,
) -> None:
    import warnings

    from sparkdl.train.ahead import Ahead
    from sparkdl.train.data import rank_dataset

    url = _write_ids(tmp_path / "d", 2300, row_group=500)
    # one reader worker: with more, row groups arrive in the order their decoding finishes
    args = {
        "rank": 1,
        "size": 2,
        "batch_size": 64,
        "steps": 15,
        "shuffle_buffer": 300,
        "seed": 3,
        "reader_workers": 1,
        "training": True,
    }

    def ids(ds: object) -> list[list[int]]:
        return [x[:, 0].numpy().astype(int).tolist() for x, _ in ds]  # type: ignore[attr-defined]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Ahead(lambda: rank_dataset(url, **args), name="next-epoch") as ahead:
            opened_ahead = ids(ahead.take())
        with rank_dataset(url, **args) as ds:
            direct = ids(ds)
    assert len(opened_ahead) == 15
    assert opened_ahead == direct


def test_rank_dataset_reads_a_shard_smaller_than_a_batch_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _write_ids(tmp_path / "d", 100, row_group=50)  # 50 rows per rank, batch 64
    with caplog.at_level("WARNING", logger="sparkdl.train.data"):
        ids = _epoch_ids(url, rank=0, steps=2, batch=64)
    assert len(ids) == 128 and set(ids) <= set(range(100))
    assert "fewer than 2 batches of 64 rows" in caplog.text


def test_one_pass_readers_never_lose_a_row_group(tmp_path: Path) -> None:
    """petastorm 0.13's thread pool can end a one-pass read one row group early (a race
    between its "workers done" and "ventilator completed" checks, ~1 read in 70 here on a
    1-row-group shard); with the columnar results reader no read of 300 comes up short."""
    import warnings

    from petastorm import make_batch_reader

    from sparkdl.train.data import columnar_results

    url = _write_ids(tmp_path / "d", 200, row_group=100)
    short = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(300):
            with make_batch_reader(
                url,
                cur_shard=i % 2,
                shard_count=2,
                num_epochs=1,
                shuffle_row_groups=True,
                seed=i + 1,
                schema_fields=["features", "label"],
                workers_count=2,
                reader_pool_type="thread",
            ) as reader:
                assert columnar_results(reader)
                short += sum(len(b.label) for b in reader) != 100
    assert short == 0


def test_memory_dataset_batches_every_row_once_per_epoch_on_its_own_thread() -> None:
    import numpy as np

    from sparkdl.train.data import memory_dataset

    x = np.arange(1000, dtype=np.float32).reshape(500, 2)
    y = np.arange(500, dtype=np.int32)
    ds = memory_dataset(x, y, batch_size=64, seed=3, training=True)
    assert ds.options().threading.private_threadpool_size == 1
    assert ds.options().autotune.enabled is False
    batches = list(ds.take(7))  # 500 // 64 steps per epoch
    ids = np.concatenate([b[1].numpy() for b in batches])
    assert len(set(ids.tolist())) == 7 * 64  # no row twice within the epoch
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches])[:, 0], ids * 2)


def test_epoch_recorder_wall_seconds_count_the_time_between_epochs() -> None:
    import time

    from sparkdl.train.callbacks import EpochRecorder

    history: list[dict[str, float]] = []
    recorder = EpochRecorder(history)
    for epoch in range(2):
        recorder.on_epoch_begin(epoch)
        time.sleep(0.05)
        recorder.on_epoch_end(epoch, {"loss": 1.0})
        time.sleep(0.2)  # between epochs: checkpoint, the next fit call, readers
    first, second = history
    assert first["wall_seconds"] == first["seconds"]  # the attempt's first epoch: from its begin
    assert 0.05 <= second["seconds"] < 0.2
    assert second["wall_seconds"] >= second["seconds"] + 0.2


def test_rank_result_from_another_sparkdl_is_named_not_misread() -> None:
    from sparkdl.errors import ClusterMisfitError
    from sparkdl.train.result import RankResult, checked

    ok = RankResult(
        history=[],
        test={},
        export_dir="/m",
        weight_digests=["a", "b"],
        fit_seconds=0.0,
        samples=0,
        workers=2,
    )
    assert checked(ok) is ok and ok.samples_per_s == 0.0 and not ok.weights_identical
    old = {"history": [], "test": {}}  # what train_rank returned before it was typed
    with pytest.raises(ClusterMisfitError, match=r"rank 0 returned 'dict'.*another sparkdl"):
        checked(old)
    newer = RankResult(
        history=[],
        test={},
        export_dir="/m",
        weight_digests=[],
        fit_seconds=1.0,
        samples=1,
        workers=1,
        format="sparkdl-rank-result/2",
    )
    with pytest.raises(ClusterMisfitError, match=r"'sparkdl-rank-result/2'"):
        checked(newer)
