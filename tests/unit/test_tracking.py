"""MLflow tracking without Spark: the config section, params and metrics, the URI checks, and
one run's life against a real local file store."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkdl.config import SparkdlConfig, TrackingConfig, load_config
from sparkdl.config.loader import ConfigError, to_dict
from sparkdl.errors import BadInputError, InfraError
from sparkdl.tracking import open_tracking
from sparkdl.tracking.metrics import Point, metric_points
from sparkdl.tracking.params import config_params, flatten, mlflow_param, run_tags
from sparkdl.tracking.uri import check_reachable, redact, resolve_uri

# ---- config -------------------------------------------------------------------------------


def test_tracking_section_defaults_and_overrides() -> None:
    cfg = load_config(SparkdlConfig)
    assert cfg.tracking == TrackingConfig(mlflow=None, tracking_uri=None, experiment="sparkdl")
    cfg = load_config(
        SparkdlConfig,
        overrides=[
            "tracking.mlflow=false",
            "tracking.tracking_uri=http://mlflow:5000",
            "tracking.experiment=churn",
            "tracking.log_model=false",
        ],
    )
    assert (cfg.tracking.mlflow, cfg.tracking.tracking_uri) == (False, "http://mlflow:5000")
    assert (cfg.tracking.experiment, cfg.tracking.log_model) == ("churn", False)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("tracking.experimnt=x", "did you mean 'tracking.experiment'"),
        ("tracking.experiment=' '", "tracking.experiment is empty"),
        ("tracking.tracking_uri=''", "tracking.tracking_uri is empty"),
        ("tracking.mlflow=maybe", "allowed: bool or null"),
        ("tracking.check_timeout_s=0", "allowed: >= 0.1"),
    ],
)
def test_bad_tracking_keys_are_refused(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(SparkdlConfig, overrides=[override])


# ---- the tracking URI ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        (None, {}, "file:///work/mlruns"),
        ("store", {}, "file:///work/store"),
        ("/abs/store", {}, "file:///abs/store"),
        ("file:rel", {}, "file:///work/rel"),
        ("file:///abs/x", {}, "file:///abs/x"),
        (None, {"MLFLOW_TRACKING_URI": "http://env:5000"}, "http://env:5000"),
        ("http://cfg:5000", {"MLFLOW_TRACKING_URI": "http://env:5000"}, "http://cfg:5000"),
        ("databricks", {}, "file:///work/databricks"),
        ("databricks://profile", {}, "databricks://profile"),
    ],
)
def test_resolve_uri(configured: str | None, env: dict[str, str], expected: str) -> None:
    assert resolve_uri(TrackingConfig(tracking_uri=configured), env=env, cwd="/work") == expected


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://u:p4ss@h:5000/x", "https://***@h:5000/x"),
        ("https://tok@h", "https://***@h"),
        ("http://h:5000/?access_token=abc&a=1", "http://h:5000/?access_token=***&a=1"),
        ("databricks://profile", "databricks://profile"),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
    ],
)
def test_redact_hides_credentials(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_a_file_store_is_created_and_must_be_writable(tmp_path: Path) -> None:
    check_reachable((tmp_path / "a" / "mlruns").as_uri(), timeout_s=1)
    assert (tmp_path / "a" / "mlruns").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match=r"tracking\.tracking_uri=.*cannot create the file"):
        check_reachable((tmp_path / "file" / "mlruns").as_uri(), timeout_s=1)


def test_an_unreachable_server_fails_at_once_naming_key_value_and_fix() -> None:
    start = time.perf_counter()
    with pytest.raises(InfraError) as err:
        check_reachable("http://alice:s3cret@127.0.0.1:9", timeout_s=5)
    assert time.perf_counter() - start < 5
    text = str(err.value)
    assert "tracking.tracking_uri='http://***@127.0.0.1:9' cannot be reached" in text
    assert "tracking.mlflow=false" in text and "s3cret" not in text


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def not_mlflow() -> Iterator[str]:
    """A real HTTP server on loopback that is not an MLflow server (every path is a 404)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_mlflow_is_bad_input(not_mlflow: str) -> None:
    with pytest.raises(BadInputError, match=r"HTTP 404 .* not an MLflow tracking server"):
        check_reachable(not_mlflow, timeout_s=5)


def test_a_database_store_that_mlflow_skinny_cannot_open_is_bad_input(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(BadInputError, match=r"cannot use that store.*mlflow==3\.17\.2") as err:
        check_reachable(uri, timeout_s=5)
    assert f"tracking.tracking_uri={uri!r}" in str(err.value)


# ---- params, tags, metrics ------------------------------------------------------------------


def test_every_config_key_is_one_param_within_mlflow_limits() -> None:
    cfg = load_config(SparkdlConfig, overrides=["spark.conf={spark.hadoop.fs.s3a.secret.key: K}"])
    params = config_params(cfg)
    assert len(params) == len(list(flatten(to_dict(cfg))))
    assert params["spark.conf.spark.hadoop.fs.s3a.secret.key"] == "***"
    assert params["train.epochs"] == "5" and params["pipeline.steps"].startswith('["generate"')
    assert all(len(k) <= 250 and len(v) <= 6000 for k, v in params.items())
    assert mlflow_param("a" * 300, "v")[0] == "a" * 250


def test_run_tags_carry_run_id_dataset_and_code_version() -> None:
    commit = "ab" * 20
    tags = run_tags(run_id="nightly", dataset_version="v3", step="train", commit=commit)
    assert tags == {
        "sparkdl.code_version": commit,
        "mlflow.source.git.commit": commit,
        "sparkdl.run_id": "nightly",
        "sparkdl.dataset_version": "v3",
        "sparkdl.step": "train",
    }


def test_metric_points_of_each_results_file_shape() -> None:
    train = {
        "history": [
            {"epoch": 0.0, "attempt": 0, "loss": 0.6, "val_accuracy": 0.7},
            {"epoch": 1.0, "attempt": 0, "loss": 0.4, "val_accuracy": 0.8},
        ],
        "test": {"accuracy": 0.81},
        "samples_per_s": 900.0,
        "weights_identical_on_all_ranks": True,
        "config": {"epochs": 2},
    }
    assert metric_points(train) == [
        Point("loss", 0.6, 0),
        Point("val_accuracy", 0.7, 0),
        Point("loss", 0.4, 1),
        Point("val_accuracy", 0.8, 1),
        Point("test_accuracy", 0.81),
        Point("samples_per_s", 900.0),
    ]
    kmeans = {"cost_per_iteration": [5.0, 3.0], "metrics": {"silhouette": 0.5}, "k": float("nan")}
    assert metric_points(kmeans) == [
        Point("cost", 5.0, 0),
        Point("cost", 3.0, 1),
        Point("silhouette", 0.5),
    ]


# ---- on, off, and one run against a real file store ------------------------------------


def test_tracking_off_imports_no_mlflow(repo: Path) -> None:
    code = (
        "import sys\n"
        "from sparkdl.config import TrackingConfig\n"
        "from sparkdl.pipeline.run import run_pipeline\n"
        "from sparkdl.tracking import open_tracking\n"
        "t = open_tracking(TrackingConfig(mlflow=False))\n"
        "print(t.enabled, 'mlflow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_a_run_logs_params_tags_and_metrics_and_ends_failed_on_error(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    tracker = open_tracking(TrackingConfig(tracking_uri=str(store), experiment="unit"))
    assert tracker.enabled and tracker.uri == store.as_uri()
    with tracker._run("ok", tags={"sparkdl.run_id": "r"}, params={"train.epochs": "2"}) as ok:
        tracker.log_points(ok, [Point("loss", 0.5, 0), Point("loss", 0.25, 1)])
    with pytest.raises(OSError, match="lost"), tracker._run("bad", tags={}) as bad:
        raise OSError("executor lost")
    client = MlflowClient(tracking_uri=store.as_uri())
    run = client.get_run(ok)
    assert run.info.status == "FINISHED" and run.data.params == {"train.epochs": "2"}
    assert run.data.tags["sparkdl.run_id"] == "r"
    history = client.get_metric_history(ok, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]
    assert client.get_run(bad).info.status == "FAILED"
    assert client.get_experiment_by_name("unit").experiment_id == run.info.experiment_id


def test_logging_that_fails_after_the_start_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    store = tmp_path / "mlruns"
    tracker = open_tracking(TrackingConfig(tracking_uri=str(store), experiment="unit"))
    with tracker._run("gone", tags={}) as run_id:
        run_dir = next(store.glob(f"*/{run_id}"))
        shutil.rmtree(run_dir)  # the store lost the run (a server that went away, a wiped disk)
        run_dir.write_text("not a run")
        tracker.log_points(run_id, [Point("loss", 0.5, 0)])
        tracker.set_tags(run_id, {"sparkdl.dataset_version": "v1"})
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name.startswith("sparkdl.tracking")
    ]
    assert any(m.startswith("could not log metrics to MLflow run") for m in warned), warned
    assert any(m.startswith("could not log status to MLflow run") for m in warned), warned
    assert all(store.as_uri() in m for m in warned)
