"""Training modes on 2 ranks (local[2]): exactness where it is defined, resume, accuracy, bytes.

SGD with momentum (a linear optimizer state), no dropout and no warm-up, so that the equalities
of sparkdl.train.modes hold: local SGD with H = 1 and sync; accumulation of k batches of b and
sync with batches of k x b; top-k at density 1 and dense; PowerSGD at full rank and dense.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.data.dataset import open_dataset
from sparkdl.errors import BadInputError
from sparkdl.train.runner import TrainResult, run_training, split_steps
from tests.integration.datasets import generate_and_prepare

pytestmark = [pytest.mark.integration, pytest.mark.long]

HIDDEN = 16
BASE = (
    "train.epochs=2",
    "train.optimizer=sgd",
    "train.learning_rate=0.05",
    "train.warmup_epochs=0",
    "train.model.dropout=0",
    f"train.model.hidden={HIDDEN}",
    "train.data_source=memory",
    "train.tensorboard=false",
    "launch.num_workers=2",
    "launch.start_timeout_s=60",
    "launch.warm_start=true",
)


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_and_prepare(
        spark,
        tmp_path_factory.mktemp("modes-data"),
        "generate.rows=4000",
        "generate.label_noise=0.02",
    )


@pytest.fixture(scope="module")
def batch(spark, dataset: str) -> int:
    """A batch b whose epoch is an even number of steps, so that 2 x b has half as many."""
    ds = open_dataset(spark, dataset)
    for b in range(32, 16, -1):
        if split_steps(ds, "train", workers=2, batch=b) % 2 == 0:
            return b
    raise AssertionError("no batch size in 17..32 gives an even number of steps")


class Runs:
    """Trainings of the module, each run once and kept by its overrides."""

    def __init__(self, spark: Any, dataset: str, root: Path, batch: int) -> None:
        self.spark, self.dataset, self.root, self.batch = spark, dataset, root, batch
        self.done: dict[tuple[str, ...], tuple[TrainResult, dict[str, Any]]] = {}

    def __call__(self, *sets: str) -> tuple[TrainResult, dict[str, Any]]:
        key = tuple(sets)
        if key not in self.done:
            out = self.root / f"run-{len(self.done)}"
            cfg = load_config(
                SparkdlConfig,
                overrides=[
                    f"train.dataset={self.dataset}",
                    f"train.output={out}",
                    f"train.batch_size={self.batch}",
                    *BASE,
                    *sets,
                ],
            )
            result = run_training(self.spark, train=cfg.train, launch=cfg.launch)
            self.done[key] = (result, json.loads((out / "metrics.json").read_text()))
        return self.done[key]


@pytest.fixture(scope="module")
def runs(spark, dataset: str, batch: int, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(spark, dataset, tmp_path_factory.mktemp("modes"), batch)


def _weights(result: TrainResult) -> list[np.ndarray]:
    import tensorflow as tf

    return tf.keras.models.load_model(result.export_dir, compile=False).get_weights()


def _gap(a: TrainResult, b: TrainResult) -> float:
    """The largest difference between two trainings' weights."""
    wa, wb = _weights(a), _weights(b)
    assert [w.shape for w in wa] == [w.shape for w in wb]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb, strict=True))


@pytest.mark.parametrize(
    "mode",
    [
        ("train.mode=local_sgd", "train.local_sgd_period=1"),
        ("train.compression=topk", "train.topk_density=1.0"),
        ("train.compression=powersgd", f"train.powersgd_rank={HIDDEN}"),
    ],
    ids=["local_sgd_h1", "topk_full", "powersgd_full_rank"],
)
def test_modes_that_reduce_to_sync_give_syncs_weights(runs: Runs, mode: tuple[str, ...]) -> None:
    sync, sync_metrics = runs()
    other, metrics = runs(*mode)
    assert (
        sync_metrics["weights_identical_on_all_ranks"] and metrics["weights_identical_on_all_ranks"]
    )
    assert _gap(sync, other) < 1e-4
    assert metrics["test"]["accuracy"] == pytest.approx(sync_metrics["test"]["accuracy"], abs=0.01)


def test_accumulating_k_batches_of_b_equals_sync_with_batches_of_k_b(runs: Runs) -> None:
    sync_2b, _ = runs(f"train.batch_size={2 * runs.batch}")
    acc, metrics = runs("train.mode=accumulate", "train.accumulate_steps=2")
    assert _gap(sync_2b, acc) < 1e-4
    _, sync_metrics = runs()
    # half the exchanges of sync with batch b, each of the same dense payload
    assert metrics["exchange"]["collectives_per_step"] == pytest.approx(0.5)
    assert metrics["exchange"]["bytes_per_step"] == [
        pytest.approx(b / 2) for b in sync_metrics["exchange"]["bytes_per_step"]
    ]


def test_sync_sends_every_gradient_once_per_step_in_one_all_reduce(runs: Runs) -> None:
    _, metrics = runs()
    exchange = metrics["exchange"]
    assert exchange["mode"] == "sync" and exchange["compression"] == "none"
    assert exchange["collectives_per_step"] == 1.0
    assert metrics["test"]["accuracy"] >= 0.8, metrics["test"]
    assert exchange["bytes_per_step"] == [4.0 * metrics["trainable_parameters"]] * 2


@pytest.mark.parametrize(
    ("mode", "most"),
    [
        (("train.mode=accumulate", "train.accumulate_steps=2"), 0.6),
        (("train.mode=local_sgd", "train.local_sgd_period=4"), 0.5),
        (
            ("train.mode=local_sgd", "train.local_sgd_period=4", "train.local_sgd_warmup_epochs=1"),
            0.8,
        ),
        (("train.compression=topk", "train.topk_density=0.1"), 0.25),
        (("train.compression=powersgd", "train.powersgd_rank=1"), 0.6),
        (("train.compression=fp16",), 0.5),
    ],
    ids=["accumulate", "local_sgd", "post_local_sgd", "topk", "powersgd", "fp16"],
)
def test_each_mode_learns_sends_less_than_sync_and_resumes_exactly(
    runs: Runs, mode: tuple[str, ...], most: float
) -> None:
    _, sync_metrics = runs()
    plain, metrics = runs(*mode)
    assert metrics["weights_identical_on_all_ranks"]
    # two epochs: sync reaches 0.8 or more (test_sync_...), every other mode 0.75
    assert metrics["test"]["accuracy"] >= 0.75, metrics["test"]
    sent = np.mean(metrics["exchange"]["bytes_per_step"])
    assert 0 < sent <= most * np.mean(sync_metrics["exchange"]["bytes_per_step"]), metrics
    # rank 1 dies in the middle of epoch 1; the second attempt resumes after epoch 0
    fault = ("train.fault.kind=kill", "train.fault.rank=1", "train.fault.epoch=1")
    resumed, resumed_metrics = runs(*mode, *fault, "train.fault.batch=3")
    assert resumed.attempts == 2 and resumed.resumed_from_epoch == 0
    assert [h["epoch"] for h in resumed_metrics["history"]] == [0, 1]
    assert all(
        np.array_equal(a, b) for a, b in zip(_weights(plain), _weights(resumed), strict=True)
    )


def test_a_mode_that_cannot_apply_is_refused_before_the_stage(runs: Runs) -> None:
    with pytest.raises(BadInputError, match=r"train\.topk_density is 0\.0; allowed: 0 < density"):
        runs("train.compression=topk", "train.topk_density=0")
    with pytest.raises(BadInputError, match=r"config key 'train\.local_sgd_period' .* >= 1"):
        runs("train.mode=local_sgd", "train.local_sgd_period=0")
    with pytest.raises(BadInputError, match=r"powersgd needs a weight of at least 2 x 2"):
        runs(
            "train.compression=powersgd",
            "train.model.kind=custom",
            "train.model.function=tests.integration.rank_functions:vector_only_model",
        )
