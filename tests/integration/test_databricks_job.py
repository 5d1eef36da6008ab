"""conf/databricks-job.json runs end to end: its exact task arguments, on local Spark.

What stands in for Databricks, and nothing else:

- the runtime: a Python that sets ``DATABRICKS_RUNTIME_VERSION`` and ``PYSPARK_PYTHON`` and
  creates the SparkSession before the job's file runs (sparkdl attaches to it, and must leave it
  running);
- DBFS: one temporary folder. ``dbfs:/x`` (Spark's view) becomes ``file:<tmp>/x`` and
  ``/dbfs/x`` (the FUSE mount of the same storage) becomes ``<tmp>/x``, in the task's arguments
  and in the config file the job reads;
- the run date: ``{{job.start_time.iso_date}}`` becomes a fixed date.

The task's arguments are kept as they are. Only the amount of work is cut, by ``--set``
overrides appended after them (rows, epochs, no MLlib reference fits).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.long]

RUN_DATE = "2026-12-01"
SMALLER = [
    *("--set", "generate.rows=4000", "--set", "train.epochs=2"),
    *("--set", "pipeline.compare_mllib=false"),  # the MLlib reference fits: not what is tested
]


def to_local(text: str, dbfs: Path) -> str:
    """Map every DBFS path in ``text`` onto the folder ``dbfs``."""
    text = re.sub(r"dbfs:/", f"file:{dbfs}/", text)
    return re.sub(r"(?<![\w:])/dbfs/", f"{dbfs}/", text)


# The "runtime": creates the session, runs the job's file as Databricks' spark_python_task does
# (``python <file> <parameters>``), then reports the exit code and whether its session lives.
_RUNTIME = textwrap.dedent(
    """
    import json, os, runpy, sys
    os.environ["DATABRICKS_RUNTIME_VERSION"] = "14.3"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    platform = (
        SparkSession.builder.master("local[2]").appName("databricks-runtime")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    python_file, params = sys.argv[1], sys.argv[2:]
    sys.argv = [python_file, *params]
    sys.path.insert(0, os.path.dirname(python_file))
    try:
        runpy.run_path(python_file, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code
    alive = platform.range(3).count() == 3
    print("RESULT " + json.dumps({"exit_code": code, "session_alive": alive}))
    """
)


@pytest.mark.timeout(900)  # about 90 s on an idle 2-core machine; much more under load
def test_databricks_job_runs_end_to_end_on_its_own_data(repo: Path, tmp_path: Path) -> None:
    job = json.loads((repo / "conf" / "databricks-job.json").read_text())
    (task,) = job["tasks"]
    python_file = task["spark_python_task"]["python_file"]
    params = task["spark_python_task"]["parameters"]
    dbfs = tmp_path / "dbfs"
    # What README's deployment copies to DBFS: the jobs folder and the config.
    assert python_file == "dbfs:/sparkdl/jobs/pipeline.py"
    config = params[params.index("--config") + 1]
    assert config == "/dbfs/sparkdl/conf/databricks.yaml"
    (dbfs / "sparkdl" / "conf").mkdir(parents=True)
    (dbfs / "sparkdl" / "conf" / "databricks.yaml").write_text(
        to_local((repo / "conf" / "databricks.yaml").read_text(), dbfs)
    )
    local_params = [
        to_local(p, dbfs).replace("{{job.start_time.iso_date}}", RUN_DATE) for p in params
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUNTIME,
            str(repo / "jobs" / "pipeline.py"),
            *local_params,
            *SMALLER,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, tail
    assert json.loads(line.removeprefix("RESULT ")) == {"exit_code": 0, "session_alive": True}, tail

    run = dbfs / "sparkdl" / "runs" / "pipeline" / RUN_DATE
    state = json.loads((run / "state.json").read_text())
    steps = {name: s["status"] for name, s in state["steps"].items()}
    assert steps == dict.fromkeys(
        ["generate", "prepare", "train", "sgd", "kmeans", "evaluate", "report"], "done"
    )
    assert list((dbfs / "sparkdl" / "raw" / "classification").glob("*.parquet"))
    evaluated = json.loads((run / "evaluate" / "metrics.json").read_text())["metrics"]
    assert evaluated["rows"] > 0 and evaluated["accuracy"] > 0.55  # above chance
    assert (run / "report" / "report.md").is_file()
