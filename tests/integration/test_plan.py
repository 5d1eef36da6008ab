"""``sparkdl plan`` on this machine: a real calibration (a child process with TensorFlow, two
Horovod ranks for the link), then predictions."""

from __future__ import annotations

import json

import pytest

from sparkdl.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture()
def plan_cache(tmp_path, monkeypatch):
    from sparkdl.plan import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "plan-cache"))
    return tmp_path / "plan-cache"


def test_plan_calibrates_once_then_predicts_from_the_cache(plan_cache, capsys) -> None:
    argv = [
        "plan",
        "--rows",
        "64000",
        "--features",
        "12",
        "--workers",
        "1,2,8",
        "--no-probe",
        "--bandwidth",
        "1gbit",
        "--latency",
        "100us",
        "--set",
        "train.batch_size=128",
        "--json",
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(list(plan_cache.glob("compute-*.json"))) == 1
    assert len(first) == 3 * 6  # every worker count in every candidate mode
    by = {(p["mode"], p["workers"]): p for p in first}
    one, eight = by[("sync", 1)], by[("sync", 8)]
    assert one["comm_s"] == 0 and eight["comm_s"] > by[("sync", 2)]["comm_s"] > 0
    assert one["steps_per_epoch"] == 64000 // 128 and eight["steps_per_epoch"] == 64000 // 8 // 128
    assert by[("sync+fp16", 8)]["comm_s"] < eight["comm_s"]
    assert by[("local_sgd H=8", 8)]["comm_s"] < eight["comm_s"] / 4
    for p in first:
        parts = p["compute_s"] + p["compress_s"] + p["comm_s"]
        assert p["step_s"] == pytest.approx(max(parts, p["input_s"]))
    (kept,) = plan_cache.glob("compute-*.json")
    doc = json.loads(kept.read_text())
    measured = doc["value"]["compute"]
    # the trainer's epoch in parts: steps, each fit's own cost, validation per row, checkpoint
    assert measured["step_s"] > 0 and measured["fit_s"] >= 0
    assert measured["forward_row_s"] > 0 and measured["checkpoint_s"] > 0
    assert doc["format"] == "sparkdl-plan-calibration/3" and doc["key"]["env"] == {}
    per_epoch = one["steps_per_epoch"] * measured["step_s"] + measured["fit_s"]
    assert one["epoch_s"] > per_epoch  # plus validation and the checkpoint
    written = kept.stat().st_mtime_ns
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first  # the same calibration, read back
    assert kept.stat().st_mtime_ns == written and list(plan_cache.glob("compute-*.json")) == [kept]


def test_a_model_that_cannot_be_built_is_refused_naming_train_model(plan_cache, capsys) -> None:
    argv = [
        "plan",
        "--rows",
        "1000",
        "--features",
        "4",
        "--no-probe",
        "--set",
        "train.model.kind=custom",
        "--set",
        "train.model.function=json:dumps",
    ]
    from sparkdl.commands import EXIT_BAD_INPUT

    assert main(argv) == EXIT_BAD_INPUT
    said = capsys.readouterr().err
    # json:dumps takes no input_dim/num_classes keywords: refused before any prediction is made
    assert "train.model.function='json:dumps' raised TypeError: dumps() missing" in said, said
    assert not list(plan_cache.glob("compute-*.json"))


def test_the_link_probe_measures_two_ranks_and_is_cached(spark, plan_cache) -> None:
    from sparkdl.plan.planner import link_calibration

    links = link_calibration(spark, network="test-host")
    reduce, gather = links["allreduce"], links["allgather"]
    # loopback between two ranks: faster than 1 Gbit/s, a per-message cost under 10 ms
    assert reduce.bandwidth > 1.25e8 and 0 < reduce.latency < 0.01
    assert gather.bandwidth > 0 and gather.latency > 0
    assert link_calibration(None, network="test-host", measure=False) == links


def test_a_prepared_dataset_gives_the_input_rate_and_the_data_size(
    spark, plan_cache, tmp_path, capsys
) -> None:
    from sparkdl.data.dataset import open_dataset
    from sparkdl.plan.calibrate import measure_input
    from sparkdl.train.data import petastorm_url

    from .datasets import generate_and_prepare

    path = generate_and_prepare(spark, tmp_path, "generate.rows=4000")
    argv = ["plan", "--set", f"train.dataset={path}", "--workers", "1,2", "--no-probe", "--json"]
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    ds = open_dataset(spark, path)
    rows, batch = ds.rows("train"), 256
    assert {p["steps_per_epoch"] for p in got if p["workers"] == 1} == {rows // batch}
    assert all(p["input_s"] > 0 for p in got)  # the reader's measured rate, not free
    assert len(list(plan_cache.glob("input-*.json"))) == 1
    # a split of few row groups cut into as many shards as it has, at most (48 were asked)
    groups = len(ds.split("train").group_rows)
    url = petastorm_url(ds.split_path("train"))
    assert groups < rows // 60
    assert measure_input(url, rows=rows, row_groups=groups, reader_workers=1, max_rows=60) > 0


def test_ranks_sharing_a_host_are_timed_as_ranks_of_a_barrier_stage(spark, plan_cache) -> None:
    import dataclasses

    from sparkdl.config.train import ModelConfig, TrainConfig
    from sparkdl.errors import BadInputError
    from sparkdl.plan.planner import compute_calibration

    train = TrainConfig(batch_size=64, model=ModelConfig(hidden=16))
    args = {"input_dim": 6, "num_classes": 2, "threads": 1, "ranks_per_host": 2}
    compute, _, shapes, device = compute_calibration(train, spark=spark, **args)
    (kept,) = plan_cache.glob("compute-*.json")
    doc = json.loads(kept.read_text())
    assert doc["key"]["side_by_side"] == "barrier stage" and doc["key"]["ranks_per_host"] == 2
    assert compute.step_s > 0 and compute.fit_s >= 0 and device == "CPU"
    assert compute.forward_row_s > 0 and compute.checkpoint_s > 0 and compute.layers
    assert shapes[0] == (6, 16)
    # without a session the same ranks are child processes: another calibration, not this one
    assert compute_calibration(train, measure=False, **args) is None
    # a model the ranks cannot build fails on every rank before any collective: refused
    bad = dataclasses.replace(train, model=ModelConfig(kind="custom", function="json:dumps"))
    with pytest.raises(BadInputError, match=r"function='json:dumps' raised TypeError"):
        compute_calibration(bad, spark=spark, **args)
    assert list(plan_cache.glob("compute-*.json")) == [kept]
