"""Every job submitted with spark-submit to a real Spark standalone cluster on 127.0.0.1.

The cluster (1 master, 2 workers with 1 core each) is started with scripts/cluster.sh on ports
of its own and stopped afterwards; the jobs run in the project's .venv on both sides.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PORT, UI_PORT = 7177, 8180
MASTER = f"spark://127.0.0.1:{PORT}"


def _cluster(repo: Path, action: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SPARKDL_CLUSTER_DIR": str(state),
        "SPARKDL_MASTER_PORT": str(PORT),
        "SPARKDL_MASTER_UI_PORT": str(UI_PORT),
        "SPARKDL_WORKER_MEMORY": "1500m",
    }
    return subprocess.run(
        [str(repo / "scripts" / "cluster.sh"), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("cluster")
    started = _cluster(repo, "start", state)
    assert started.returncode == 0, started.stderr
    yield state
    _cluster(repo, "stop", state)


def test_cluster_script_status_and_idempotent_stop(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "c"
    # nothing started from this folder: stop is a no-op, status says so
    assert _cluster(repo, "stop", state).returncode == 0
    assert "nothing started" in _cluster(repo, "status", state).stdout


def _command(repo: Path, job: str, tmp: Path, *sets: str) -> tuple[list[str], dict[str, str]]:
    venv_bin = repo / ".venv" / "bin"
    base = [
        "spark.log_level=ERROR",
        f"generate.output={tmp / 'raw'}",
        "generate.rows=6000",
        f"prepare.input.path={tmp / 'raw'}",
        f"prepare.output={tmp / 'prepared'}",
        f"train.dataset={tmp / 'prepared'}",
        "train.epochs=2",
        "train.batch_size=64",
    ]
    cmd = [
        str(venv_bin / "spark-submit"),
        "--master",
        MASTER,
        str(repo / "jobs" / job),
        "-c",
        str(repo / "conf" / "local.yaml"),
        "-c",
        str(repo / "conf" / "standalone.yaml"),
        *[x for s in (*base, *sets) for x in ("--set", s)],
    ]
    return cmd, {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}


def _submit(
    repo: Path, job: str, tmp: Path, *sets: str, timeout: int = 420
) -> subprocess.CompletedProcess[str]:
    cmd, env = _command(repo, job, tmp, *sets)
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{job} failed:\n{done.stderr[-4000:]}"
    return done


def test_each_job_runs_on_the_standalone_cluster(cluster: Path, repo: Path, tmp_path: Path) -> None:
    _submit(repo, "generate_data.py", tmp_path)
    _submit(repo, "prepare_data.py", tmp_path)
    out = _submit(repo, "train_horovod.py", tmp_path, f"train.output={tmp_path / 'train'}")
    assert "trained 2 epochs on 2 Horovod ranks" in out.stdout
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["weights_identical_on_all_ranks"] is True and metrics["test"]["accuracy"] > 0.7
    common = [f"sgd.dataset={tmp_path / 'prepared'}", f"kmeans.dataset={tmp_path / 'prepared'}"]
    _submit(repo, "parallel_sgd.py", tmp_path, *common, f"sgd.output={tmp_path / 'sgd'}")
    assert json.loads((tmp_path / "sgd" / "metrics.json").read_text())["partitions"] == 2
    _submit(repo, "kmeans.py", tmp_path, *common, "kmeans.k=2", f"kmeans.output={tmp_path / 'km'}")
    assert (tmp_path / "km" / "model.npz").is_file()
    _submit(
        repo,
        "evaluate.py",
        tmp_path,
        f"evaluate.model={tmp_path / 'train' / 'model'}",
        f"evaluate.output={tmp_path / 'eval'}",
    )
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert evaluated["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=0.02)


def test_pipeline_and_a_killed_rank_resume_on_the_cluster(
    cluster: Path, repo: Path, tmp_path: Path
) -> None:
    _submit(
        repo,
        "pipeline.py",
        tmp_path,
        f"pipeline.root={tmp_path / 'runs'}",
        "pipeline.mllib_cost_iterations=2",
    )
    state = json.loads(next((tmp_path / "runs").glob("*/state.json")).read_text())
    assert all(step["status"] == "done" for step in state["steps"].values())
    out = _submit(
        repo,
        "train_horovod.py",
        tmp_path,
        f"train.output={tmp_path / 'killed'}",
        "train.fault.kind=kill",
        "train.fault.rank=1",
        "train.fault.epoch=1",
        "train.fault.batch=3",
    )
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert metrics["attempts"] == 2 and metrics["resumed_from_epoch"] == 0, out.stdout
    assert [h["epoch"] for h in metrics["history"]] == [0, 1]


def test_a_killed_spark_worker_mid_training_resumes_after_it_comes_back(
    cluster: Path, repo: Path, tmp_path: Path, spark: object
) -> None:
    """SIGKILL one worker with its executor during epoch 2, start it again: the driver
    retries the barrier stage once the slots are back and resumes from the last checkpoint."""
    import signal
    import time

    from tests.integration.datasets import generate_and_prepare

    # The data are made in this process (the generate and prepare jobs go through the cluster in
    # test_each_job_runs_on_the_standalone_cluster); what this test submits is the training.
    generate_and_prepare(spark, tmp_path, "generate.rows=60000")
    cmd, env = _command(
        repo,
        "train_horovod.py",
        tmp_path,
        f"train.output={tmp_path / 'train'}",
        "train.epochs=6",
        "train.batch_size=32",
    )
    # spark-submit merges the Python driver's stderr (the progress lines) into its stdout
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        lines.append(line)
        if "epoch 1/6 (attempt 1)" in line or time.monotonic() > deadline:
            break
    import psutil

    # the machine behind worker-2 goes away: its Worker JVM, executor JVM and Python workers
    worker = psutil.Process(int((cluster / "pids" / "worker-2.pid").read_text()))
    doomed = [worker, *worker.children(recursive=True)]

    def command(p: psutil.Process) -> str:
        try:
            return " ".join(p.cmdline())
        except psutil.Error:  # already gone or a zombie
            return ""

    assert any("CoarseGrainedExecutorBackend" in command(p) for p in doomed)
    for p in doomed:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    time.sleep(3)
    assert _cluster(repo, "start", cluster).returncode == 0  # starts the missing worker only
    out, _ = proc.communicate(timeout=600)
    log = "".join(lines) + out
    assert proc.returncode == 0, log[-4000:]
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["attempts"] >= 2 and metrics["resumed_from_epoch"] is not None
    assert [h["epoch"] for h in metrics["history"]] == list(range(6))
