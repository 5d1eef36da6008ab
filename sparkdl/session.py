"""The one place that builds, or attaches to, a SparkSession for every sparkdl job.

Profiles
--------
``local``          embedded ``local[N]`` (the default); executors are threads of this JVM.
``local-cluster``  ``local-cluster[E,C,MB]``: separate executor JVMs and Python workers, for
                   barrier and fault tests on one machine.
``standalone``     ``spark://host:port``.
``yarn``           ``--master yarn``; the environment is shipped by spark-submit.
``databricks``     attach to the session the Databricks runtime already created.

Under ``spark-submit`` the master given on its command line wins over the profile's, and the
decision is logged.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from sparkdl.config.schema import LaunchConfig, SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# spark-submit's PythonRunner hands its JVM's gateway port to the Python it starts; read it at
# import, before pyspark could set anything itself.
_SUBMIT_GATEWAY = "PYSPARK_GATEWAY_PORT" in os.environ
# How often the scheduler re-checks that a barrier stage fits the cluster (Spark's default: 15 s).
_BARRIER_CHECK_INTERVAL_S = 5
# The SparkContexts build_session started itself, each with how many build_session calls hold
# it (a command run inside a program or test that built the session first is one more): the
# last stop_session of those stops it. A session the platform (Databricks, a notebook,
# spark-shell) or another caller created is shared: it is left running.
_STARTED: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()


def pyspark_home() -> str:
    """Return the installed pyspark package folder, which doubles as SPARK_HOME.

    Examples
    --------
    >>> Path(pyspark_home(), "jars").is_dir()
    True
    """
    import pyspark

    return str(Path(pyspark.__file__).resolve().parent)


def resolve_master(cfg: SparkConfig) -> str | None:
    """Return the master URL a profile asks for, or None when the platform supplies it.

    Parameters
    ----------
    cfg : SparkConfig
        The ``spark`` config section.

    Returns
    -------
    str or None
        ``local[N]``, ``local-cluster[E,C,MB]``, ``spark://...``, ``yarn``, or None for
        ``databricks``.

    Examples
    --------
    >>> resolve_master(SparkConfig(profile="local", cores=3))
    'local[3]'
    """
    if cfg.profile == "local":
        return cfg.master or f"local[{cfg.cores}]"
    if cfg.profile == "local-cluster":
        lc = cfg.local_cluster
        return f"local-cluster[{lc.executors},{lc.cores_per_executor},{lc.memory_mb}]"
    if cfg.profile == "standalone":
        return cfg.master
    if cfg.profile == "yarn":
        return "yarn"
    return None


def _runs_on_this_machine(cfg: SparkConfig) -> bool:
    if cfg.profile in ("local", "local-cluster"):
        return True
    if cfg.profile == "standalone" and cfg.master:
        hosts = [h.split(":")[0] for h in urlparse(cfg.master).netloc.split(",")]
        return all(h in _LOOPBACK for h in hosts)
    return False


def session_conf(
    cfg: SparkConfig,
    *,
    launch: LaunchConfig | None = None,
    submit_master: str | None = None,
) -> dict[str, str]:
    """Compute the Spark confs a profile sets (pure: no JVM, no environment change).

    Parameters
    ----------
    cfg : SparkConfig
        The ``spark`` config section; its ``conf`` mapping wins over everything computed here.
    launch : LaunchConfig, optional
        Given for training sessions: sets ``spark.barrier.sync.timeout``, turns dynamic
        allocation off and bounds the wait for barrier slots by ``start_timeout_s``.
    submit_master : str, optional
        The master ``spark-submit`` already chose, which then is kept.

    Returns
    -------
    dict of str to str
        Spark conf keys and values.

    Examples
    --------
    >>> session_conf(SparkConfig())["spark.master"]
    'local[2]'
    """
    conf: dict[str, str] = {"spark.app.name": cfg.app_name}
    master = resolve_master(cfg)
    if submit_master:
        if master and master != submit_master:
            logger.info(
                "spark-submit chose master %s; keeping it over profile %r's %s",
                submit_master,
                cfg.profile,
                master,
            )
    elif master:
        conf["spark.master"] = master
    if cfg.profile != "databricks":
        conf["spark.ui.enabled"] = "true" if cfg.ui else "false"
        conf["spark.ui.showConsoleProgress"] = "false"
        conf["spark.sql.execution.arrow.pyspark.enabled"] = "true"
    if _runs_on_this_machine(cfg):
        # Executors must run the interpreter that has TensorFlow and Horovod installed; without
        # this barrier tasks fail with "No module named 'tensorflow'".
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    if cfg.profile == "local-cluster":
        conf["spark.test.home"] = os.environ.get("SPARK_HOME") or pyspark_home()
    if launch is not None:
        conf["spark.barrier.sync.timeout"] = str(launch.barrier_sync_timeout_s)
        conf["spark.dynamicAllocation.enabled"] = "false"
        conf["spark.scheduler.barrier.maxConcurrentTasksCheck.interval"] = (
            f"{_BARRIER_CHECK_INTERVAL_S}s"
        )
        conf["spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures"] = str(
            max(1, math.ceil(launch.start_timeout_s / _BARRIER_CHECK_INTERVAL_S))
        )
    conf.update(cfg.conf)
    return conf


def _prepare_environment(cfg: SparkConfig) -> None:
    """Set the process environment a new JVM and its Python workers inherit."""
    if _runs_on_this_machine(cfg):
        # Bind Spark to loopback like the driver confs above (and stop its hostname warning).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.profile == "local-cluster":
        # local-cluster starts executor JVMs with SPARK_HOME/bin scripts; pip's pyspark has them.
        os.environ.setdefault("SPARK_HOME", pyspark_home())


def launched_by_spark_submit() -> bool:
    """Return True when this Python runs under spark-submit (its JVM is the parent process).

    Examples
    --------
    >>> launched_by_spark_submit()
    False
    """
    return _SUBMIT_GATEWAY


def _submitted_conf() -> dict[str, str]:
    """The confs spark-submit set (``--master``, ``--conf``, ...); empty when this Python
    started Spark itself."""
    if not _SUBMIT_GATEWAY:
        return {}
    from pyspark import SparkConf, SparkContext

    # Connect to spark-submit's JVM first: before that, SparkConf cannot see its settings.
    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def build_session(
    cfg: SparkConfig,
    *,
    launch: LaunchConfig | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build or attach to the SparkSession for a profile.

    Parameters
    ----------
    cfg : SparkConfig
        The ``spark`` config section.
    launch : LaunchConfig, optional
        Pass it for sessions that run barrier training (see :func:`session_conf`).
    extra_conf : mapping, optional
        Confs that win over the profile's and the config file's (tests use it for temp dirs).

    Returns
    -------
    pyspark.sql.SparkSession
        A session whose log level is ``cfg.log_level``.

    Raises
    ------
    RuntimeError
        For profile ``databricks`` outside a Databricks runtime.

    Examples
    --------
    >>> spark = build_session(SparkConfig(cores=2))  # doctest: +SKIP
    >>> spark.sparkContext.master  # doctest: +SKIP
    'local[2]'
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if cfg.profile == "databricks":
        if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
            raise RuntimeError(
                "spark.profile is 'databricks' but DATABRICKS_RUNTIME_VERSION is not set: this "
                "is not a Databricks runtime. Use --set spark.profile=local here."
            )
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        logger.info("attached to the Databricks runtime's SparkSession; it is left running")
        for key, value in {**session_conf(cfg, launch=launch), **(extra_conf or {})}.items():
            if key != "spark.app.name":
                _set_runtime_conf(spark, key, value)
        spark.sparkContext.setLogLevel(cfg.log_level)
        return spark

    _prepare_environment(cfg)
    submitted = _submitted_conf()
    conf = session_conf(cfg, launch=launch, submit_master=submitted.get("spark.master"))
    # What the spark-submit command line says wins over the profile and the config file (for
    # example spark.pyspark.python pointing into an environment shipped with --archives).
    for key in submitted:
        conf.pop(key, None)
    conf.update(extra_conf or {})
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    existing = SparkContext._active_spark_context
    spark = builder.getOrCreate()
    if existing is None:
        _STARTED[spark.sparkContext] = 1
    elif existing in _STARTED:  # started by an earlier build_session of this process
        _STARTED[existing] += 1
    else:
        logger.info(
            "attaching to the running SparkContext (master %s); it is left running", existing.master
        )
    spark.sparkContext.setLogLevel(cfg.log_level)
    logger.info(
        "Spark %s session on %s (profile %s, default parallelism %d)",
        spark.version,
        spark.sparkContext.master,
        cfg.profile,
        spark.sparkContext.defaultParallelism,
    )
    return spark


def owns_session(spark: SparkSession) -> bool:
    """Return True when :func:`build_session` started this session's SparkContext.

    Examples
    --------
    >>> owns_session(build_session(SparkConfig()))  # doctest: +SKIP
    True
    """
    return spark.sparkContext in _STARTED


def stop_session(spark: SparkSession) -> None:
    """Stop a session :func:`build_session` started, so that its JVM can exit.

    A session it did not start (the Databricks runtime's, a notebook's, one the caller made
    before) is shared with others and is left running; one it started is stopped by the last
    of the ``build_session`` calls that got it (a command run inside a program that built the
    session first leaves it to that program).

    Under spark-submit the JVM outlives this Python, and Spark 3.5 keeps a non-daemon
    ``java.util.Timer`` ("Barrier task timer for barrier() calls.") in ``BarrierTaskContext``'s
    companion object once a barrier stage ran in the driver JVM (local modes). Left alone it
    keeps spark-submit from ever exiting; it is cancelled here, when nothing can use it again.

    Examples
    --------
    >>> stop_session(spark)  # doctest: +SKIP
    """
    if not owns_session(spark):
        logger.info("leaving the SparkSession running: sparkdl did not start it")
        return
    holders = _STARTED[spark.sparkContext] - 1
    if holders:
        _STARTED[spark.sparkContext] = holders
        logger.info("leaving the SparkSession running: %d earlier caller(s) still use it", holders)
        return
    del _STARTED[spark.sparkContext]
    if _SUBMIT_GATEWAY and spark.sparkContext.master.startswith("local"):
        jvm = spark.sparkContext._jvm
        spark.stop()
        try:
            module = jvm.java.lang.Class.forName("org.apache.spark.BarrierTaskContext$")
            companion = module.getField("MODULE$").get(None)
            getattr(companion, "org$apache$spark$BarrierTaskContext$$timer")().cancel()
        except Exception as exc:  # a Spark without that field: nothing to release
            logger.debug("barrier timer not released: %s", exc)
        return
    spark.stop()


def _set_runtime_conf(spark: SparkSession, key: str, value: str) -> None:
    """Set a conf on a running session when Spark allows it, else log why it was left alone."""
    try:
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
        elif spark.sparkContext.getConf().get(key) != value:
            logger.warning(
                "conf %s=%s cannot be changed on a running cluster; set it in the cluster's "
                "Spark config instead",
                key,
                value,
            )
    except Exception as exc:  # py4j surfaces JVM errors as generic exceptions
        logger.warning("could not set %s on the attached session: %s", key, exc)


__all__ = [
    "build_session",
    "launched_by_spark_submit",
    "owns_session",
    "pyspark_home",
    "resolve_master",
    "session_conf",
    "stop_session",
]
