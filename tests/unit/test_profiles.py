"""Every platform profile under conf/ loads on top of conf/local.yaml and says what it must."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.launch.preflight import check_confs
from sparkdl.session import session_conf


def _load(repo: Path, *overlays: str) -> SparkdlConfig:
    return load_config(
        SparkdlConfig, files=[repo / "conf" / "local.yaml", *(repo / "conf" / o for o in overlays)]
    )


def test_standalone_profile_points_at_the_local_cluster(repo: Path) -> None:
    cfg = _load(repo, "standalone.yaml")
    conf = session_conf(cfg.spark, launch=cfg.launch)
    assert conf["spark.master"] == "spark://127.0.0.1:7077"
    assert int(conf["spark.cores.max"]) == cfg.launch.num_workers * int(
        conf["spark.executor.cores"]
    )
    # on 127.0.0.1 the executors use this interpreter unless spark-submit ships an environment
    assert conf["spark.pyspark.python"].endswith("python")


def test_yarn_profile_has_fixed_executors_a_queue_and_the_packed_environment(repo: Path) -> None:
    cfg = _load(repo, "yarn.yaml")
    conf = session_conf(cfg.spark, launch=cfg.launch)
    assert conf["spark.master"] == "yarn"
    assert conf["spark.dynamicAllocation.enabled"] == "false"
    assert conf["spark.yarn.queue"] == "default"
    assert conf["spark.pyspark.python"] == "./environment/bin/python"
    assert conf["spark.task.cpus"] == conf["spark.executor.cores"]  # one rank per executor
    assert int(conf["spark.executor.instances"]) >= cfg.launch.num_workers
    assert check_confs(conf) is False
    assert cfg.train.dataset.startswith("hdfs://")


def test_gpu_profile_passes_preflight_and_its_discovery_script_works(repo: Path) -> None:
    cfg = _load(repo, "yarn.yaml", "gpu.yaml")
    conf = session_conf(cfg.spark, launch=cfg.launch)
    assert check_confs(conf) is True  # ranks get GPUs, and the task amount is set
    script = repo / conf["spark.executor.resource.gpu.discoveryScript"]
    out = subprocess.run(
        [str(script)],
        env={"CUDA_VISIBLE_DEVICES": "0,3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"name": "gpu", "addresses": ["0", "3"]}


def test_databricks_profile_uses_dbfs_and_refuses_outside_databricks(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkdl.session import build_session

    cfg = _load(repo, "databricks.yaml")
    assert cfg.spark.profile == "databricks"
    assert cfg.prepare.output.startswith("dbfs:/") and cfg.train.output.startswith("/dbfs/")
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(RuntimeError, match="DATABRICKS_RUNTIME_VERSION is not set"):
        build_session(cfg.spark)
    job = json.loads((repo / "conf" / "databricks-job.json").read_text())
    task = job["tasks"][0]
    assert task["spark_python_task"]["python_file"].endswith("jobs/pipeline.py")
    assert task["new_cluster"]["spark_conf"]["spark.dynamicAllocation.enabled"] == "false"
