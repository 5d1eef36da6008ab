"""Which master and confs each Spark profile asks for (pure: no JVM is started)."""

from __future__ import annotations

import sys
from types import MappingProxyType

import pytest

from sparkdl.config import LaunchConfig, LocalClusterConfig, SparkConfig
from sparkdl.session import build_session, resolve_master, session_conf


@pytest.mark.parametrize(
    ("cfg", "master"),
    [
        (SparkConfig(), "local[2]"),
        (SparkConfig(cores=5), "local[5]"),
        (SparkConfig(master="local[*]"), "local[*]"),
        (
            SparkConfig(
                profile="local-cluster",
                local_cluster=LocalClusterConfig(executors=3, cores_per_executor=2, memory_mb=2048),
            ),
            "local-cluster[3,2,2048]",
        ),
        (
            SparkConfig(profile="standalone", master="spark://10.0.0.1:7077"),
            "spark://10.0.0.1:7077",
        ),
        (SparkConfig(profile="yarn"), "yarn"),
        (SparkConfig(profile="databricks"), None),
    ],
)
def test_resolve_master(cfg: SparkConfig, master: str | None) -> None:
    assert resolve_master(cfg) == master


def test_local_profiles_point_executors_at_this_python() -> None:
    for cfg in (
        SparkConfig(),
        SparkConfig(profile="local-cluster"),
        SparkConfig(profile="standalone", master="spark://127.0.0.1:7077"),
    ):
        conf = session_conf(cfg)
        assert conf["spark.pyspark.python"] == sys.executable, cfg.profile
        assert conf["spark.driver.host"] == "127.0.0.1"


def test_remote_profiles_leave_python_to_the_cluster() -> None:
    for cfg in (
        SparkConfig(profile="yarn"),
        SparkConfig(profile="standalone", master="spark://10.0.0.1:7077"),
    ):
        conf = session_conf(cfg)
        assert "spark.pyspark.python" not in conf
        assert "spark.driver.host" not in conf


def test_local_cluster_sets_spark_test_home() -> None:
    conf = session_conf(SparkConfig(profile="local-cluster"))
    assert conf["spark.master"] == "local-cluster[2,1,1024]"
    assert conf["spark.test.home"]


def test_training_sessions_set_barrier_confs() -> None:
    conf = session_conf(
        SparkConfig(), launch=LaunchConfig(barrier_sync_timeout_s=300, start_timeout_s=60)
    )
    assert conf["spark.barrier.sync.timeout"] == "300"
    assert conf["spark.dynamicAllocation.enabled"] == "false"
    assert conf["spark.scheduler.barrier.maxConcurrentTasksCheck.interval"] == "5s"
    assert conf["spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures"] == "12"
    plain = session_conf(SparkConfig())
    assert "spark.barrier.sync.timeout" not in plain


def test_user_conf_wins_and_ui_follows_config() -> None:
    cfg = SparkConfig(
        ui=True, conf=MappingProxyType({"spark.ui.enabled": "false", "spark.executor.memory": "3g"})
    )
    conf = session_conf(cfg)
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.executor.memory"] == "3g"
    assert session_conf(SparkConfig(ui=True))["spark.ui.enabled"] == "true"


def test_spark_submit_master_is_kept() -> None:
    conf = session_conf(SparkConfig(), submit_master="spark://10.0.0.9:7077")
    assert "spark.master" not in conf


def test_databricks_profile_outside_databricks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(RuntimeError, match="DATABRICKS_RUNTIME_VERSION is not set"):
        build_session(SparkConfig(profile="databricks"))
