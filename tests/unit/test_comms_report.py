"""The targets of ``sparkdl bench comms``, computed from given runs (sparkdl.bench.comms_report)."""

from __future__ import annotations

import math

import pytest

from sparkdl.bench.comms_report import check_targets, report
from sparkdl.bench.comms_runs import Measured


def _run(name: str, curve: list[tuple[float, float]], *, rate: str = "1gbit", sent: float = 1e6):
    history = [{"wall_seconds": s, "val_accuracy": a} for s, a in curve]
    return Measured("cnn", name, rate, 2, 100.0, curve[-1][0], history, sent, 1.0, 5_000_000)


def _targets(runs: list[Measured]) -> dict[str, tuple[float, bool]]:
    return {what: (value, met) for what, value, _, met in check_targets(runs, period=16)}


def test_time_to_accuracy_is_the_best_non_sync_modes_seconds_over_syncs() -> None:
    sync = _run("sync", [(20, 0.80), (20, 0.90), (20, 0.95)])
    # reaches 0.95 - 0.005 after 3 + 3 + 3 = 9 s: 9 / 60 of sync's time
    power = _run("powersgd r=4", [(3, 0.70), (3, 0.90), (3, 0.946)], sent=5e3)
    # never reaches it
    local = _run("local_sgd H=16", [(2, 0.70), (2, 0.80), (2, 0.90)])
    got = _targets([sync, power, local])
    value, met = got["cnn 1 Gbit/s: best non-sync (powersgd r=4) time to sync's accuracy / sync's"]
    assert value == pytest.approx(9 / 60) and met
    assert got["cnn: powersgd r=4 bytes per step / sync's"] == (pytest.approx(0.005), True)


def test_no_mode_reaching_syncs_accuracy_is_not_met_and_says_never() -> None:
    sync = _run("sync", [(20, 0.90), (20, 0.95)])
    topk = _run("topk 1%", [(5, 0.90), (5, 0.93)], sent=6e4)
    got = _targets([sync, topk])
    value, met = got["cnn 1 Gbit/s: best non-sync (topk 1%) time to sync's accuracy / sync's"]
    assert math.isnan(value) and not met
    assert got["cnn: topk 1% bytes per step / sync's"] == (pytest.approx(0.06), False)
    text = report([sync, topk], period=16, notes=["a note"])
    assert text.splitlines()[0] == "a note"
    assert "never" in text and "NOT MET" in text


def test_the_per_core_target_needs_the_pair_sync_and_local_sgd_unthrottled() -> None:
    def mlp(name: str, rate: float, acc: float) -> Measured:
        history = [{"wall_seconds": 1.0, "val_accuracy": acc}]
        return Measured("mlp", name, "off", 2, rate, 1.0, history, 1.0, 1.0, 10)

    runs = [
        mlp("2 x 1 rank", 400.0, 0.91),
        mlp("sync", 170.0, 0.913),
        mlp("local_sgd H=16", 360.0, 0.910),
    ]
    got = _targets(runs)
    assert got["mlp unthrottled: local_sgd H=16 samples/s / 2 x 1 rank side by side"] == (
        pytest.approx(0.9),
        True,
    )
    assert got["mlp unthrottled: sync accuracy - local_sgd H=16 accuracy (points)"] == (
        pytest.approx(0.3),
        True,
    )
    assert _targets(runs[1:]) == {}  # without the pair there is nothing to compare


def test_unthrottled_the_pair_and_local_sgd_repeat_and_the_report_keeps_their_median(
    tmp_path,
) -> None:
    from sparkdl.bench.comms_bench import Sizes, _plan
    from sparkdl.bench.comms_report import merge_repeats

    sizes = Sizes(
        mlp_rows=1000,
        cnn_rows=100,
        image=8,
        cnn_head=(16,),
        epochs=2,
        cnn_epochs=2,
        period=4,
        rates=("off", "1gbit"),
        modes=("sync", "local_sgd"),
        repeats=3,
    )
    names = [(t.model, t.name) for t in _plan("off", tmp_path, sizes).trainings]
    assert names.count(("mlp", "2 x 1 rank")) == 3 and names.count(("mlp", "local_sgd H=4")) == 3
    assert names.count(("mlp", "sync")) == 1 and names.count(("cnn", "local_sgd H=4")) == 1
    # the repeats come after every other training, so they span the run
    assert names[-4:] == [("mlp", "2 x 1 rank"), ("mlp", "local_sgd H=4")] * 2
    throttled = [(t.model, t.name) for t in _plan("1gbit", tmp_path, sizes).trainings]
    assert ("mlp", "2 x 1 rank") not in throttled and len(throttled) == len(set(throttled))
    history = [{"wall_seconds": 1.0, "val_accuracy": 0.7}] * 2
    runs = [
        Measured("mlp", "2 x 1 rank", "off", 2, rate, 1.0, history, 0.0, 0.0, 5000)
        for rate in (300.0, 100.0, 200.0)
    ]
    (merged,) = merge_repeats(runs)
    assert merged.samples_per_s == 200.0 and merged.repeats == [300.0, 100.0, 200.0]
    text = report([merged], period=4, notes=[])
    assert "mlp off 2 x 1 rank: samples/s of each repeat 300, 100, 200" in text
