"""Preflight names the executors' interpreter and what it lacks, in seconds, before a launch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Its own Python: the executors' interpreter is fixed when the SparkContext starts.
_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from sparkdl.config import LaunchConfig, SparkConfig
    from sparkdl.errors import ClusterMisfitError
    from sparkdl.launch.preflight import preflight
    from sparkdl.session import build_session, stop_session

    # A session whose executors run another interpreter: PySpark takes PYSPARK_PYTHON (which
    # spark-submit sets from spark.pyspark.python) when the SparkContext starts.
    os.environ["PYSPARK_PYTHON"] = sys.argv[1]
    spark = build_session(SparkConfig(log_level="ERROR"), launch=LaunchConfig(num_workers=2))
    start = time.monotonic()
    try:
        preflight(spark, launch=LaunchConfig(num_workers=2), check_build=False)
        out = {"error": None}
    except ClusterMisfitError as exc:
        out = {"error": str(exc), "exit_code": exc.exit_code}
    out["seconds"] = time.monotonic() - start
    stop_session(spark)
    print("RESULT " + json.dumps(out))
    """
)


def _run(python: str, tmp_path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, python],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_executors_without_the_ranks_modules_are_refused_fast(tmp_path: Path) -> None:
    # A bare environment of the same Python: it finds sparkdl through PYTHONPATH (the tests set
    # it to the repository), but none of the packages installed in the project's venv.
    bare = tmp_path / "bare"
    subprocess.run(
        [sys._base_executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120
    )
    out = _run(str(bare / "bin" / "python"), tmp_path)
    assert out["error"] is not None, "preflight passed with executors that lack psutil"
    message = out["error"]
    assert f"executors' Python {bare / 'bin' / 'python'}" in message
    assert "'psutil'" in message and "'tensorflow'" in message and "'horovod'" in message
    assert "spark.pyspark.python" in message and "PYSPARK_PYTHON" in message
    assert "'sparkdl'" not in message  # found through PYTHONPATH, so not reported missing
    assert len(message) < 1500
    assert out["exit_code"] == 2
    assert out["seconds"] < 30


def test_executors_running_the_projects_python_pass(tmp_path: Path) -> None:
    out = _run(sys.executable, tmp_path)
    assert out["error"] is None
    assert out["seconds"] < 30
