"""The pipeline run's state contract: typed step outputs written to and read from ``state.json``,
a state file written before the format field, the format check, and the report reading the run's
state instead of rebuilding paths."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from sparkdl.errors import BadInputError
from sparkdl.pipeline.outputs import (
    EvaluateOutput,
    GenerateOutput,
    KmeansOutput,
    PrepareOutput,
    SgdOutput,
    StepResult,
    TrainOutput,
)
from sparkdl.pipeline.report import collect, write_report
from sparkdl.pipeline.runlog import RunLog
from sparkdl.pipeline.state import DONE, FAILED, FORMAT, RUNNING, RunState
from sparkdl.store.arrow import ArrowStore

# Written by sparkdl.pipeline.state at commit e702d1f (before typed outputs and the format
# field): generate, prepare, train and kmeans done, sgd failed.
BEFORE = Path(__file__).parent / "fixtures" / "state-before-format.json"
HASH = "ab" * 32


def _open(run_dir: Path, config_hash: str = HASH) -> RunState:
    return RunState.open(
        ArrowStore(str(run_dir)), run_id="r", run_date="2026-11-22", config_hash=config_hash
    )


def _open_store(store: ArrowStore) -> RunState:
    return RunState.open(store, run_id="r", run_date="2026-11-22", config_hash=HASH)


def _old_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    shutil.copy(BEFORE, run_dir / "state.json")
    return run_dir


def test_a_state_file_written_before_the_format_field_resumes(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path)
    state = _open(run_dir)
    assert [state.status(s) for s in ("generate", "prepare", "train", "kmeans", "sgd")] == [
        DONE,
        DONE,
        DONE,
        DONE,
        FAILED,
    ]
    assert state.output("prepare", PrepareOutput) == PrepareOutput(
        dataset="file:/tmp/mfx/oldrun/prepared",
        version="v1",
        splits={"train": 4800, "validation": 600, "test": 600},
    )
    # the old record's "mllib" (an MLlib-only file) is not read as the comparison it replaced
    old_kmeans = state.output("kmeans", KmeansOutput)
    assert old_kmeans.metrics.endswith("/kmeans/metrics.json") and old_kmeans.compare is None
    assert state.output("sgd", SgdOutput) is None  # failed: no outputs
    assert "executor lost" in state.step("sgd").error
    state.start("sgd")
    assert state.status("sgd") == RUNNING and state.step("sgd").attempts == 2
    assert state.step("sgd").error is None
    state.finish("sgd", StepResult("ParallelSGD", SgdOutput(metrics="/m.json")))
    again = json.loads((run_dir / "state.json").read_text())
    assert again["format"] == FORMAT
    assert again["steps"]["sgd"]["outputs"] == {"metrics": "/m.json", "compare": None}
    # what the old writer recorded is kept as it was
    before = json.loads(BEFORE.read_text())
    assert again["steps"]["train"]["outputs"] == before["steps"]["train"]["outputs"]
    assert _open(run_dir).output("sgd", SgdOutput) == SgdOutput(metrics="/m.json")


def test_outputs_round_trip_through_the_file(tmp_path: Path) -> None:
    results = {
        "generate": StepResult("wrote", GenerateOutput(path="/raw")),
        "prepare": StepResult("published", PrepareOutput("file:/p", "v", {"train": 3})),
        "train": StepResult("trained", TrainOutput(model="/t/model", metrics="/t/metrics.json")),
        "evaluate": StepResult("accuracy 0.9", EvaluateOutput(metrics="/e/metrics.json")),
    }
    state = _open(tmp_path)
    for step, result in results.items():
        state.start(step)
        state.finish(step, result)
    reopened = _open(tmp_path)
    assert sorted(reopened.steps) == sorted(results)
    for step, result in results.items():
        assert reopened.output(step, type(result.output)) == result.output
        assert reopened.step(step).summary == result.summary
        assert reopened.step(step).seconds >= 0
    assert reopened.output("sgd", SgdOutput) is None


def test_another_config_is_refused(tmp_path: Path) -> None:
    _open(tmp_path)
    with pytest.raises(BadInputError, match="started with another config"):
        _open(tmp_path, config_hash="cd" * 32)


@pytest.mark.parametrize(
    ("found", "why"),
    [("sparkdl-pipeline-state/2", "written by a newer sparkdl"), ("other/1", "unknown format")],
)
def test_a_format_this_sparkdl_does_not_read_is_refused(
    tmp_path: Path, found: str, why: str
) -> None:
    run_dir = _old_run(tmp_path)
    data = json.loads(BEFORE.read_text())
    (run_dir / "state.json").write_text(json.dumps({**data, "format": found}))
    with pytest.raises(BadInputError) as err:
        _open(run_dir)
    message = str(err.value)
    assert str(run_dir / "state.json") in message and repr(found) in message and why in message
    assert repr(FORMAT) in message and "--run-id" in message


def test_a_damaged_entry_is_refused_naming_the_field(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path)
    data = json.loads(BEFORE.read_text())
    del data["steps"]["train"]["status"]
    (run_dir / "state.json").write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=r"field 'steps.train.status' is missing"):
        _open(run_dir)


def test_mistyped_outputs_are_refused_when_read(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path)
    data = json.loads(BEFORE.read_text())
    data["steps"]["train"]["outputs"]["metrics"] = 3
    (run_dir / "state.json").write_text(json.dumps(data))
    state = _open(run_dir)
    with pytest.raises(BadInputError, match=r"steps.train.outputs: field 'metrics' is 3 \(int\)"):
        state.output("train", TrainOutput)
    with pytest.raises(BadInputError, match=r"field 'model' is missing"):
        state.output("generate", TrainOutput)  # generate recorded a path, not a model


def test_unknown_fields_are_ignored(tmp_path: Path) -> None:
    run_dir = _old_run(tmp_path)
    data = json.loads(BEFORE.read_text())
    data["host"] = "node-1"
    data["steps"]["train"]["outputs"]["tensorboard"] = "/t/tb"
    (run_dir / "state.json").write_text(json.dumps(data))
    state = _open(run_dir)
    assert state.output("train", TrainOutput).metrics.endswith("/train/metrics.json")


def test_the_report_reads_the_files_the_state_records(tmp_path: Path) -> None:
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    history = [
        {"epoch": e, "loss": 1.0 / (e + 1), "accuracy": 0.5 + e / 10, "seconds": 1.0}
        for e in range(3)
    ]
    (elsewhere / "train.json").write_text(
        json.dumps({"history": history, "samples_per_s": 100.0, "workers": 2, "attempts": 1})
    )
    (elsewhere / "eval.json").write_text(
        json.dumps({"split": "test", "metrics": {"accuracy": 0.8125, "log_loss": 0.4}})
    )
    # a file at the conventional place that no finished step recorded is not reported
    (run_dir / "sgd").mkdir(parents=True)
    (run_dir / "sgd" / "metrics.json").write_text(json.dumps({"kind": "x", "test": {}}))
    state = _open(run_dir)
    for step, output in [
        ("train", TrainOutput(model=str(elsewhere / "m"), metrics=str(elsewhere / "train.json"))),
        ("evaluate", EvaluateOutput(metrics=str(elsewhere / "eval.json"))),
    ]:
        state.start(step)
        state.finish(step, StepResult(f"{step} ok", output))
    state.start("sgd")
    state.fail("sgd", "OSError: lost")
    data = collect(state)
    assert data["train"]["history"] == history and data["evaluate"]["metrics"]["accuracy"] == 0.8125
    assert data["sgd"] is None and data["kmeans"] is None and data["mllib_logistic"] is None
    assert data["steps"]["sgd"]["status"] == FAILED
    md_uri = write_report(ArrowStore(str(run_dir / "report")), state=state)
    assert md_uri == str(run_dir / "report" / "report.md")
    md = Path(md_uri).read_text()
    assert "| sgd | failed | 0.0 | OSError: lost |" in md
    assert "| train | done |" in md and "0.8125" in md
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert "training_curves.png" in report["plots"] and "kmeans_cost.png" not in report["plots"]


def test_a_run_folder_on_an_object_store_keeps_state_log_and_report_there(
    object_store: str,
) -> None:
    run = ArrowStore(object_store)
    results = ArrowStore(f"{object_store}/train")
    results.write_bytes(
        "metrics.json",
        json.dumps({"history": [{"epoch": 0, "loss": 0.5, "seconds": 1.0}], "workers": 2}).encode(),
    )
    log = RunLog(run)
    # not mounted: the log is written on this machine, and nothing is on the store until published
    assert run.local_path() is None and log.path.is_file()
    assert not run.exists("pipeline.log")
    state = _open_store(run)
    state.start("train")
    logging.getLogger("sparkdl.test").info("train started on the cluster")
    log.publish()
    assert b"train started on the cluster" in run.read_bytes("pipeline.log")
    state.finish(
        "train",
        StepResult(
            "ok",
            TrainOutput(model=f"{object_store}/train/model", metrics=results.uri + "/metrics.json"),
        ),
    )
    log.close()
    assert not log.path.exists()  # the staged copy goes; the published log stays
    again = RunLog(run)  # a resumed run appends to the log of the earlier attempt
    logging.getLogger("sparkdl.test").info("resumed")
    again.close()
    text = run.read_bytes("pipeline.log").decode()
    assert text.index("train started on the cluster") < text.index("resumed")
    reopened = _open_store(run)
    assert reopened.status("train") == DONE and reopened.path == f"{object_store}/state.json"
    md = write_report(ArrowStore(f"{object_store}/report"), state=reopened)
    assert md == f"{object_store}/report/report.md"
    report = json.loads(ArrowStore(f"{object_store}/report").read_bytes("report.json"))
    assert report["train"]["workers"] == 2
