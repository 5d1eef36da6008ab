"""The performance model of ``sparkdl plan``: its formulas, the modes' traffic, the picks,
the refusals, and the calibration cache's rules (no Spark, no TensorFlow)."""

from __future__ import annotations

import json

import pytest

from sparkdl.config.train import TrainConfig
from sparkdl.errors import BadInputError
from sparkdl.plan import cache
from sparkdl.plan.command import parse_latency, parse_rate, parse_workers
from sparkdl.plan.model import (
    Compute,
    Job,
    Link,
    Mode,
    Rates,
    collectives,
    comm_s,
    predict,
    ring_allreduce_s,
)
from sparkdl.plan.planner import Calibration, candidate_modes, plan, target_link

GBIT = 1e9 / 8
SHAPES = [(1000, 1000), (1000,), (1000, 10), (10,)]  # 1.01 M parameters
PARAMS = 1000 * 1000 + 1000 + 1000 * 10 + 10
COMPUTE = Compute(
    batch_size=100, threads=1, step_s=0.01, forward_row_s=1e-5, checkpoint_s=0.1, fit_s=0.05
)
RATES = Rates(topk_values_per_s=1e8, matmul_flops=1e10)


def _job(workers: int, link: Link | None = None) -> Job:
    return Job(
        train_rows=100_000,
        validation_rows=10_000,
        epochs=3,
        workers=workers,
        cores_per_worker=1,
        link=link or Link(bandwidth=GBIT, latency=50e-6),
    )


@pytest.mark.parametrize(
    ("workers", "expected"),
    [(1, 0.0), (2, 4e6 / GBIT + 2 * 50e-6), (8, 2 * 7 / 8 * 4e6 / GBIT + 14 * 50e-6)],
)
def test_ring_allreduce_is_the_stated_formula(workers, expected) -> None:
    got = ring_allreduce_s(4e6, workers=workers, link=Link(bandwidth=GBIT, latency=50e-6))
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("mode", "kinds", "total_bytes", "every"),
    [
        (Mode(), ["allreduce"], 4 * PARAMS, 1),
        (Mode(compression="fp16"), ["allreduce"], 2 * PARAMS, 1),
        (Mode(mode="accumulate", accumulate_steps=4), ["allreduce"], 4 * PARAMS, 4),
        # local SGD averages the model and Adam's two slots
        (Mode(mode="local_sgd", local_sgd_period=8), ["allreduce"], 12 * PARAMS, 8),
        (Mode(compression="topk", topk_density=0.01), ["allgather"] * 2, 8 * 10_111, 1),
        # PowerSGD: (rows + cols) * rank per matrix, vectors dense
        (
            Mode(compression="powersgd", powersgd_rank=4),
            ["allreduce"] * 2,
            4 * ((1000 + 1000) * 4 + 1000 + (1000 + 10) * 4 + 10),
            1,
        ),
    ],
)
def test_each_mode_sends_what_its_exchange_sends(mode, kinds, total_bytes, every) -> None:
    got = collectives(SHAPES, mode)
    assert [c.kind for c in got] == kinds
    assert sum(c.size for c in got) == total_bytes
    assert {c.every for c in got} == {every}


def test_compression_and_local_sgd_cut_communication_at_1_gbit() -> None:
    link = Link(bandwidth=GBIT, latency=50e-6)
    sync = comm_s(SHAPES, Mode(), workers=8, link=link)
    assert comm_s(SHAPES, Mode(compression="fp16"), workers=8, link=link) < 0.51 * sync
    assert (
        comm_s(SHAPES, Mode(mode="local_sgd", local_sgd_period=16), workers=8, link=link) < sync / 5
    )
    assert comm_s(SHAPES, Mode(compression="powersgd"), workers=8, link=link) < sync / 20


def test_a_prediction_adds_up_from_its_parts() -> None:
    p = predict(shapes=SHAPES, mode=Mode(), compute=COMPUTE, rates=RATES, job=_job(4))
    assert p.steps_per_epoch == 100_000 // 4 // 100
    assert p.step_s == pytest.approx(p.compute_s + p.comm_s)
    # fit's own cost, a quarter of the validation rows and one all-reduce of the totals, the
    # checkpoint, and the two training metrics' all-reduces at the epoch's end
    link = _job(4).link
    validation = 1e-5 * 10_000 / 4 + ring_allreduce_s(24, workers=4, link=link)
    metrics = 2 * ring_allreduce_s(4, workers=4, link=link)
    assert p.overhead_s == pytest.approx(0.05 + validation + 0.1 + metrics)
    assert p.epoch_s == pytest.approx(p.steps_per_epoch * p.step_s + p.overhead_s)
    assert p.total_s == pytest.approx(3 * p.epoch_s)
    assert p.core_hours == pytest.approx(p.total_s * 4 / 3600)


def test_a_slow_reader_bounds_the_step() -> None:
    slow = Job(**{**_job(1).__dict__, "input_rows_per_s": 2000.0})
    p = predict(shapes=SHAPES, mode=Mode(), compute=COMPUTE, rates=RATES, job=slow)
    assert p.input_s == pytest.approx(100 / 2000) and p.step_s == p.input_s


def test_the_plan_picks_the_fastest_and_the_cheapest() -> None:
    cal = Calibration(compute=COMPUTE, rates=RATES, shapes=SHAPES, device="CPU")
    report = plan(cal, modes=candidate_modes(TrainConfig()), workers=[1, 2, 4, 8], job=_job(1))
    assert len(report.predictions) == 4 * 6
    assert report.fastest.total_s == min(p.total_s for p in report.predictions)
    assert report.cheapest.core_hours == min(p.core_hours for p in report.predictions)
    assert report.cheapest.workers == 1  # one rank never pays for communication
    text = report.format()
    assert "fastest:" in text and "fewest core-hours:" in text and "compute ms" in text


def test_the_picks_keep_within_the_users_bounds() -> None:
    cal = Calibration(compute=COMPUTE, rates=RATES, shapes=SHAPES, device="CPU")
    modes = candidate_modes(TrainConfig(), kinds=("sync", "local_sgd"))
    assert [m.label for m in modes] == ["sync", "local_sgd H=8"]
    free = plan(cal, modes=modes, workers=[1, 2, 4, 8], job=_job(1))
    assert free.fastest.workers > 1  # more workers finish sooner ...
    # ... but within a core-hour budget under the fastest plan's cost, a cheaper one is picked
    budget = (free.fastest.core_hours + free.cheapest.core_hours) / 2
    bounded = plan(cal, modes=modes, workers=[1, 2, 4, 8], job=_job(1), max_core_hours=budget)
    assert bounded.fastest.core_hours <= budget < free.fastest.core_hours
    assert bounded.fastest.total_s >= free.fastest.total_s
    deadline = plan(cal, modes=modes, workers=[1, 2, 4, 8], job=_job(1), max_total_s=1e9)
    assert deadline.fastest == free.fastest and deadline.cheapest == free.cheapest
    with pytest.raises(BadInputError, match=r"no plan fits --max-minutes 0\.001 and") as err:
        plan(cal, modes=modes, workers=[1, 2], job=_job(1), max_total_s=0.06)
    assert "the fastest takes" in str(err.value) and "--modes" in str(err.value)


def test_an_unknown_mode_is_refused_naming_the_choices() -> None:
    with pytest.raises(BadInputError, match="--modes sync,hogwild: give one or more of sync"):
        candidate_modes(TrainConfig(), kinds=("sync", "hogwild"))


def test_a_given_link_keeps_the_measured_software_cost_per_message() -> None:
    measured = {"allreduce": Link(bandwidth=3e9, latency=40e-6)}
    got = target_link(measured, bandwidth=10 * GBIT, latency=5e-6)
    assert got.bandwidth == 10 * GBIT and got.latency == pytest.approx(45e-6)
    assert target_link(measured, bandwidth=None, latency=None) == measured["allreduce"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: parse_rate("0gbit"), "above 0"),
        (lambda: parse_rate("10"), "with a unit"),
        (lambda: parse_latency("fast"), "with a unit"),
        (lambda: parse_workers("0,2"), "1 or more"),
        (lambda: Link(bandwidth=0.0, latency=0.0), "bandwidth"),
        (lambda: _job(0), "workers=0"),
    ],
)
def test_bad_input_is_refused_with_the_key_and_the_fix(call, match) -> None:
    with pytest.raises(BadInputError, match=match):
        call()


def test_a_calibration_of_another_stack_is_measured_again(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    key = {"model": "mlp", "batch_size": 64}
    assert cache.load("compute", key) is None
    path = cache.save("compute", key, {"step_s": 0.01})
    assert cache.load("compute", key) == {"step_s": 0.01}
    doc = json.loads(path.read_text())
    doc["stack"]["tensorflow"] = "2.14.0"  # written by another stack
    path.write_text(json.dumps(doc))
    with caplog.at_level("INFO", logger="sparkdl.plan.cache"):
        assert cache.load("compute", key) is None
    assert "outdated (tensorflow changed): measuring it again" in caplog.text


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max-minutes", "0", "--max-minutes 0: give a bound above 0"),
        ("--max-core-hours", "-1", "--max-core-hours -1: give a bound above 0"),
        ("--modes", "sync,async", "--modes sync,async: give one or more of sync, fp16"),
    ],
)
def test_bad_bounds_are_refused_before_any_calibration(
    flag, value, says, tmp_path, monkeypatch, capsys
) -> None:
    from sparkdl.cli import main

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    argv = ["plan", "--rows", "1000", "--features", "3", "--no-probe", flag, value]
    assert main(argv) == 2
    assert says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing measured
