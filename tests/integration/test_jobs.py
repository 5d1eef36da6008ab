"""Entry points as users run them: the job script, spark-submit, local-cluster, doctor, setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


def _run(
    args: list[str], *, timeout: int, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env, check=False
    )


def test_allreduce_job_under_spark_submit_exits(repo: Path) -> None:
    # Before stop_session released Spark's barrier timer, spark-submit never exited here.
    proc = _run(
        [
            str(VENV_BIN / "spark-submit"),
            "--master",
            "local[2]",
            "jobs/allreduce_check.py",
            "--config",
            "conf/local.yaml",
        ],
        timeout=240,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK: every rank got the exact sums (2 ranks" in proc.stdout
    assert proc.stdout.count("all-reduce sums [[0.0, 3.0, 6.0") == 2


@pytest.mark.cluster
def test_allreduce_job_on_local_cluster(repo: Path) -> None:
    proc = _run(
        [sys.executable, "jobs/allreduce_check.py", "--config", "conf/local-cluster.yaml"],
        timeout=300,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK: every rank got the exact sums (2 ranks" in proc.stdout
    assert "rank plan by host: {'127.0.0.1': [0, 1]}" in proc.stderr


def test_job_with_misspelt_key_exits_2(repo: Path) -> None:
    proc = _run(
        [sys.executable, "jobs/allreduce_check.py", "--set", "launch.num_worker=2"],
        timeout=60,
        cwd=repo,
    )
    assert proc.returncode == 2
    assert "did you mean 'launch.num_workers'" in proc.stderr


def test_doctor_reports_healthy_stack(repo: Path) -> None:
    proc = _run(
        [str(VENV_BIN / "sparkdl"), "--log-level", "WARNING", "doctor", "--json"],
        timeout=180,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["healthy"] is True
    status = {c["name"]: c["status"] for c in report["checks"]}
    for name in ("java", "horovod build", "tf.keras", "spark session", "import sparkdl", "pyarrow"):
        assert status[name] == "ok", report
    build = next(c for c in report["checks"] if c["name"] == "horovod build")["detail"]
    assert "tensorflow=yes" in build and "gloo=yes" in build


def test_doctor_fails_on_old_java(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    proc = _run(
        [str(VENV_BIN / "sparkdl"), "doctor", "--no-spark"],
        timeout=180,
        cwd=repo,
        env={"JAVA_HOME": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert "FAIL  java" in proc.stdout and "install JDK 17+" in proc.stdout


def test_second_setup_is_fast(repo: Path) -> None:
    start = time.monotonic()
    proc = _run(["bash", "scripts/setup.sh"], timeout=300, cwd=repo)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already set up" in proc.stderr
    assert elapsed < 60


@pytest.mark.gpu
def test_doctor_counts_gpus(repo: Path) -> None:
    proc = _run(
        [str(VENV_BIN / "sparkdl"), "doctor", "--no-spark", "--json"], timeout=180, cwd=repo
    )
    hardware = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "hardware")
    assert "nvidia-smi lists 0" not in hardware["detail"]
    assert "nvidia-smi lists" in hardware["detail"]
