"""``sparkdl bench plan``'s pairing of predictions with measured runs, and its verdict."""

from __future__ import annotations

import pytest

from sparkdl.bench.comms_runs import Measured
from sparkdl.bench.plan_bench import Checked, _check, report
from sparkdl.config.train import TrainConfig
from sparkdl.plan.model import Compute, Link, Rates

COMPUTE = Compute(batch_size=100, threads=1, step_s=0.01, forward_row_s=0.0, checkpoint_s=0.0)
CALIBRATED = (COMPUTE, Rates(topk_values_per_s=1e8, matmul_flops=1e10), [(1000, 250)], "CPU")
LINK = Link(bandwidth=1e8, latency=0.0)


def _measured(name: str, workers: int, epoch_s: float) -> Measured:
    history = [{"wall_seconds": epoch_s, "val_accuracy": 0.9}] * 3
    return Measured("mlp", name, "1gbit", workers, 1.0, epoch_s, history, 0.0, 0.0, 250_000)


class _Cfg:
    train = TrainConfig(batch_size=100)


DATA = {"cfg": _Cfg(), "rows": {1: 20_000, 2: 20_000}, "validation": 0}


@pytest.mark.parametrize(
    ("name", "workers", "comm_per_step", "epoch_end"),
    [
        ("sync", 1, 0.0, 0.0),
        ("sync", 2, 1e6 / 1e8, 0.0),  # 250 000 float32 = 1 MB: S/B for 2 ranks
        ("accumulate k=4", 2, 1e6 / 1e8 / 4, 0.0),  # 100 steps: no partial group at the end
        # the model and Adam's two slots, and once more at the end (100 steps, 16 a period)
        ("local_sgd H=16", 2, 3e6 / 1e8 / 16, 3e6 / 1e8),
    ],
)
def test_each_run_is_predicted_in_its_own_mode(name, workers, comm_per_step, epoch_end) -> None:
    got = _check(_measured(name, workers, 2.0), DATA, CALIBRATED, LINK)
    steps = 20_000 // workers // 100
    assert got.parts["comm"] == pytest.approx(comm_per_step)
    # the metrics' two 4-byte all-reduces at each epoch's end: 8e-8 s at this link
    metrics = 2 * 4 / 1e8 if workers > 1 else 0.0
    assert got.predicted_s == pytest.approx(steps * (0.01 + comm_per_step) + epoch_end + metrics)
    assert got.error == pytest.approx(got.predicted_s / 2.0 - 1)


def test_the_verdict_is_the_median_and_the_largest_error() -> None:
    runs = [
        Checked("mlp", "off", 2, "sync", p, 1.0, {"compute": 0.001, "comm": 0.0})
        for p in (1.05, 0.9, 1.2)
    ]
    text = report(runs, ["a note"])
    assert "a note" in text
    assert "median absolute error 10.0 % (target <= 15 %): met" in text
    assert "largest 20.0 % (target <= 30 %): met" in text
    worse = report([*runs, Checked("cnn", "1gbit", 2, "sync", 1.5, 1.0, runs[0].parts)], [])
    assert "largest 50.0 % (target <= 30 %): NOT met" in worse
