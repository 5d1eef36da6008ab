"""Exit codes tell a scheduler the truth: one real command per code (0, 1, 2, 3, 130).

Each test runs ``python -m sparkdl.cli <command>`` in a subprocess, as a scheduler would, and
checks the code, the one console line, and (for unexpected errors) the traceback in the log file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.datasets import generate_and_prepare

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "SPARKDL_LOG_DIR": str(tmp / "logs"),
    }


def _sparkdl(
    repo: Path, tmp: Path, *args: str, timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sparkdl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=repo,
        env=_env(tmp),
        check=False,
    )


@pytest.fixture(scope="module")
def blobs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return generate_and_prepare(
        spark,
        tmp_path_factory.mktemp("exit-blobs"),
        "generate.rows=4000",
        "generate.clusters=3",
        "prepare.columns.label_values=[0, 1, 2]",
        profiles=("local.yaml", "blobs.yaml"),
    )


def test_success_exits_0(repo: Path, tmp_path: Path) -> None:
    proc = _sparkdl(
        repo,
        tmp_path,
        "generate",
        "--config",
        "conf/local.yaml",
        "--set",
        "generate.rows=2000",
        "--set",
        f"generate.output={tmp_path / 'raw'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2000" in proc.stdout.replace(",", "")


def test_more_workers_than_slots_exits_2_without_traceback(repo: Path, tmp_path: Path) -> None:
    # Before: exit 1 with a traceback (RuntimeError from the slot check).
    proc = _sparkdl(
        repo,
        tmp_path,
        "train",
        "--config",
        "conf/local.yaml",
        "--set",
        "launch.num_workers=5",
        "--set",
        "launch.start_timeout_s=2",  # the slot check waits this long for more slots
        "--set",
        f"train.output={tmp_path / 'out'}",
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "launch.num_workers=5" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_baseline_failing_every_attempt_exits_3(repo: Path, tmp_path: Path, blobs: str) -> None:
    proc = _sparkdl(
        repo,
        tmp_path,
        "kmeans",
        "--config",
        "conf/local.yaml",
        "--set",
        f"kmeans.dataset={blobs}",
        "--set",
        f"kmeans.output={tmp_path / 'km'}",
        "--set",
        "kmeans.k=3",
        "--set",
        "kmeans.max_attempts=1",
        "--set",
        "kmeans.fault.partition=0",
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "sparkdl kmeans: infrastructure failure" in proc.stderr
    assert "injected fault: partition 0" in proc.stderr


def test_sigterm_exits_130(repo: Path, tmp_path: Path) -> None:
    # A scheduler's kill (SIGTERM) stops the run like Ctrl-C: PySpark cancels the jobs, exit 130.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sparkdl.cli",
            "generate",
            "--config",
            "conf/local.yaml",
            "--set",
            "generate.rows=200000000",
            "--set",
            f"generate.output={tmp_path / 'raw'}",
        ],
        cwd=repo,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    # Wait until the Spark job runs (its first task writes under the output's temp folder).
    while not list((tmp_path / "raw").glob("_temporary/*")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "sparkdl generate: interrupted" in err


def test_failed_spark_job_is_infrastructure_but_a_bad_jvm_call_is_a_bug(spark: Any) -> None:
    from py4j.protocol import Py4JJavaError

    from sparkdl.exits import exit_code_for

    with pytest.raises(Py4JJavaError) as job:
        spark.sparkContext.parallelize([1], 1).map(lambda x: x // 0).collect()
    assert exit_code_for(job.value) == 3  # org.apache.spark.SparkException: a failed stage
    with pytest.raises(Py4JJavaError, match="IndexOutOfBounds") as call:
        spark.sparkContext._jvm.java.util.ArrayList().get(5)
    assert exit_code_for(call.value) == 1  # a wrong JVM call is our bug, not the cluster's
