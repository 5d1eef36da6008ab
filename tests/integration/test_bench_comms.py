"""``sparkdl bench comms`` end to end, small: both models, three modes, unthrottled and 1 Gbit/s.

One run of the real command (its own Spark, each rate one child in its own network namespace);
the assertions read its ``--json`` document and its printed report. Without root the 1 Gbit/s
part is skipped by the bench itself, which the test checks it says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# the module fixture runs the whole bench (about 3.5 min alone, longer beside other files)
pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(1200)]

ARGS = [
    "--mlp-rows=6000",
    "--cnn-rows=2400",
    "--image=8",
    # the pooled maps (128 values) into 16384 units: 2.2 M weights, 8.8 MB a step; both ranks'
    # halves of the ring on one 1 Gbit/s loopback: about 0.14 s a step, several steps' compute
    "--cnn-head=16384",
    "--epochs=2",
    "--cnn-epochs=3",
    "--period=4",
    "--rates=off,1gbit",
    "--models=mlp,cnn",
    "--modes=sync,local_sgd,powersgd",
    # one of each: the repeats' interleaving and median are unit-tested (test_comms_report.py)
    "--repeats=1",
]


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("sparkdl")), "bench", "comms", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


@pytest.fixture(scope="module")
def bench(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    work = tmp_path_factory.mktemp("comms")
    out = work / "comms.json"
    done = _bench(*ARGS, f"--workdir={work / 'scratch'}", f"--json={out}", cwd=repo)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text()), done.stdout


def _throttled(doc: dict[str, Any]) -> bool:
    """Whether the 1 Gbit/s part ran (without root the bench skips it, with a note)."""
    return not any("rate 1gbit skipped" in note for note in doc["notes"])


def _run(doc: dict[str, Any], model: str, rate: str, name: str) -> dict[str, Any]:
    found = [r for r in doc["runs"] if (r["model"], r["rate"], r["name"]) == (model, rate, name)]
    assert len(found) == 1, (model, rate, name, [(r["model"], r["rate"]) for r in doc["runs"]])
    return found[0]


def test_every_model_mode_and_rate_is_one_run_with_its_counted_exchange(bench) -> None:
    doc, text = bench
    rates = ["off", "1gbit"] if _throttled(doc) else ["off"]
    for rate in rates:
        for model in ("mlp", "cnn"):
            sync = _run(doc, model, rate, "sync")
            # a dense all-reduce of every float32 gradient, once a step
            assert sync["bytes_per_step"] == 4.0 * sync["parameters"]
            assert sync["collectives_per_step"] == 1.0
            local = _run(doc, model, rate, "local_sgd H=4")
            # every H = 4 steps and at each epoch's end: 1/4 of the steps, or a little more
            assert 0.25 <= local["collectives_per_step"] <= 0.5
            power = _run(doc, model, rate, "powersgd r=4")
            assert 0 < power["bytes_per_step"] < sync["bytes_per_step"]
            for run in (sync, local, power):
                assert len(run["history"]) == (2 if model == "mlp" else 3)
                assert run["samples_per_s"] > 0 and run["epoch_s"] > 0
                assert run["workers"] == 2
    pair = _run(doc, "mlp", "off", "2 x 1 rank")
    assert pair["samples_per_s"] > 0
    # one repeat asked: no run is a median of several, and the report lists none
    assert all(r["repeats"] == [] for r in doc["runs"])
    assert "samples/s of each repeat" not in text
    assert [r for r in doc["runs"] if r["name"] == "2 x 1 rank"] == [pair]  # unthrottled only
    # every mode learns: the MLP the demo's data (6000 rows, 2 epochs: about 0.67; chance is 0.5),
    # the CNN the blobs
    for run in doc["runs"]:
        assert run["history"][-1]["val_accuracy"] >= (0.6 if run["model"] == "mlp" else 0.9), run
    assert text.count("\n") >= len(doc["runs"]) + 3  # a table row per run, then the targets


def test_the_targets_are_ratios_of_the_runs_beside_them(bench) -> None:
    doc, text = bench
    per_core = next(t for t in doc["targets"] if "samples/s / 2 x 1 rank" in t["what"])
    local = _run(doc, "mlp", "off", "local_sgd H=4")
    pair = _run(doc, "mlp", "off", "2 x 1 rank")
    assert per_core["value"] == pytest.approx(local["samples_per_s"] / pair["samples_per_s"])
    assert per_core["met"] is (per_core["value"] >= 0.85)
    power = next(t for t in doc["targets"] if t["what"].startswith("cnn: powersgd"))
    sync = _run(doc, "cnn", "off", "sync")
    share = _run(doc, "cnn", "off", "powersgd r=4")["bytes_per_step"] / sync["bytes_per_step"]
    assert power["value"] == pytest.approx(share) and power["met"] and share < 0.1
    for t in doc["targets"]:
        assert f"{t['value']:.3f}  (target {t['bound']})" in text


def test_at_one_gbit_the_big_model_waits_on_the_network_and_powersgd_does_not(bench) -> None:
    doc, _ = bench
    if not _throttled(doc):
        pytest.skip(next(n for n in doc["notes"] if "rate 1gbit skipped" in n))
    off, slow = (_run(doc, "cnn", rate, "sync") for rate in ("off", "1gbit"))
    power = _run(doc, "cnn", "1gbit", "powersgd r=4")
    assert slow["epoch_s"] > off["epoch_s"]
    assert power["epoch_s"] < slow["epoch_s"]
    assert any(t["what"].startswith("cnn 1 Gbit/s") for t in doc["targets"])


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--models", "mlp,resnet", "resnet is not one of mlp, cnn"),
        ("--modes", "sync,hogwild", "hogwild is not one of sync, fp16"),
        ("--rates", "off,fast", "'fast' is no link rate"),
        ("--repeats", "0", "--repeats 0: give 1 or more"),
    ],
)
def test_a_bad_choice_is_refused_before_anything_runs(
    repo: Path, tmp_path: Path, option: str, value: str, says: str
) -> None:
    done = _bench(f"{option}={value}", f"--workdir={tmp_path}", cwd=repo)
    assert done.returncode == 2 and says in done.stderr, done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # nothing generated


def _path_without(tool: str, into: Path) -> str:
    """A PATH on which ``tool`` is missing: each folder that holds it is replaced by a folder of
    links to everything else it holds."""
    folders = []
    for folder in os.environ["PATH"].split(os.pathsep):
        if not (Path(folder) / tool).exists():
            folders.append(folder)
            continue
        copy = into / f"path-{len(folders)}"
        copy.mkdir()
        for entry in Path(folder).iterdir():
            if entry.name != tool:
                (copy / entry.name).symlink_to(entry)
        folders.append(str(copy))
    return os.pathsep.join(folders)


def test_where_the_namespace_cannot_be_made_it_says_why_and_runs_the_unthrottled_part(
    repo: Path, tmp_path: Path
) -> None:
    # tc missing stands for any reason scripts/slownet.sh gives (not root, no unshare, no tc):
    # each exits 77 with its reason, which the bench reports and skips the throttled rates on
    out = tmp_path / "comms.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("sparkdl")),
            "bench",
            "comms",
            "--mlp-rows=3000",
            "--epochs=2",
            "--models=mlp",
            "--modes=sync",
            "--rates=off,1gbit",
            "--repeats=1",
            f"--workdir={tmp_path / 'w'}",
            f"--json={out}",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PATH": _path_without("tc", tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(out.read_text())
    notes = " ".join(doc["notes"])
    reason = "needs root" if os.geteuid() != 0 else "tc (iproute2) is not installed"
    assert "rate 1gbit skipped" in notes and reason in notes, notes
    assert "unthrottled runs in the host's network" in notes, notes
    assert sorted((r["rate"], r["name"]) for r in doc["runs"]) == [
        ("off", "2 x 1 rank"),
        ("off", "sync"),
    ]
