"""stop_session stops only sessions build_session started, never a platform's shared session."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Runs in its own Python: a platform's session must be the first SparkContext of its process.
_SCRIPT = textwrap.dedent(
    """
    import json, os
    from pyspark.sql import SparkSession
    from sparkdl.config import SparkConfig
    from sparkdl.session import build_session, owns_session, stop_session

    out = {}
    # What Databricks, a notebook or spark-shell does before any sparkdl code runs.
    platform = (
        SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    attached = build_session(SparkConfig(profile="local", log_level="ERROR"))
    out["same_context"] = attached.sparkContext is platform.sparkContext
    out["owned_local"] = owns_session(attached)
    stop_session(attached)
    out["alive_after_local"] = platform.range(5).count() == 5

    os.environ["DATABRICKS_RUNTIME_VERSION"] = "14.3"
    runtime = build_session(SparkConfig(profile="databricks", log_level="ERROR"))
    out["owned_databricks"] = owns_session(runtime)
    stop_session(runtime)
    out["alive_after_databricks"] = platform.range(7).count() == 7
    del os.environ["DATABRICKS_RUNTIME_VERSION"]
    platform.stop()

    started = build_session(SparkConfig(profile="local", cores=1, log_level="ERROR"))
    out["owned_started"] = owns_session(started)
    # a command run inside the program (sparkdl.cli.main) builds and stops it too
    inner = build_session(SparkConfig(profile="local", cores=1, log_level="ERROR"))
    stop_session(inner)
    out["alive_after_inner"] = started.range(3).count() == 3
    stop_session(started)
    out["stopped_started"] = started.sparkContext._jsc is None
    print("RESULT " + json.dumps(out))
    """
)


def test_only_sessions_sparkdl_started_are_stopped(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    assert json.loads(line.removeprefix("RESULT ")) == {
        "same_context": True,
        "owned_local": False,
        "alive_after_local": True,
        "owned_databricks": False,
        "alive_after_databricks": True,
        "owned_started": True,
        "alive_after_inner": True,
        "stopped_started": True,
    }
