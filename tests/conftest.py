"""Shared fixtures: one local[2] SparkSession per test session, GPU-test skipping, paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Executors' Python workers and rank child processes inherit this, so functions defined in
# tests/ (pickled by reference) import there too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "long: a file of several minutes; scheduled right after the cluster files"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the files with `cluster` tests first, then the `long` files; skip `gpu` tests, with
    the reason, where no CUDA GPU is present.

    The cluster files are the longest (the standalone cluster's is a quarter of the suite): with
    pytest-xdist workers (scripts/test.sh) they start first, then the files of several minutes
    (marked `long`), and the short files fill in around them, instead of a long one running
    alone at the end while the other worker idles.
    """
    cluster = {item.path for item in items if "cluster" in item.keywords}
    long = {item.path for item in items if "long" in item.keywords}
    # stable: a file's order is kept
    items.sort(key=lambda item: (item.path not in cluster, item.path not in long))
    if any("gpu" in item.keywords for item in items) and _gpu_count() == 0:
        skip = pytest.mark.skip(reason="needs a CUDA GPU (nvidia-smi lists none on this machine)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where MLflow runs go that a test does not send elsewhere: this session's temp folder.

    Tracking is on by default (mlflow is installed) and its default store is ./mlruns; without
    this every pipeline, train or baseline test would leave runs in the checkout. Set as
    MLFLOW_TRACKING_URI (tracking.tracking_uri's fallback), so job and CLI subprocesses inherit
    it.
    """
    store = tmp_path_factory.mktemp("mlruns")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = store.as_uri()
    yield store
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="session", autouse=True)
def plan_calibrations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where training runs keep their plan calibrations (``train.predict``): one folder for this
    run's pytest workers (the parent of their temp folders), not the user's ~/.cache. Set as
    SPARKDL_PLAN_CACHE, so job and CLI subprocesses inherit it."""
    from sparkdl.plan.cache import CACHE_ENV

    folder = tmp_path_factory.getbasetemp().parent / "sparkdl-plan-cache"
    folder.mkdir(parents=True, exist_ok=True)
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A local[2] SparkSession (UI off, 2 shuffle partitions, temp dirs) for the whole run."""
    from sparkdl.config import LaunchConfig, SparkConfig
    from sparkdl.session import build_session

    tmp = tmp_path_factory.mktemp("spark")
    session = build_session(
        SparkConfig(profile="local", cores=2, app_name="sparkdl-tests", log_level="ERROR"),
        launch=LaunchConfig(start_timeout_s=60, barrier_sync_timeout_s=120),
        extra_conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.local.dir": str(tmp / "local"),
            "spark.sql.warehouse.dir": str(tmp / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={tmp / 'derby'}",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter running the tests (the project's venv)."""
    return sys.executable
