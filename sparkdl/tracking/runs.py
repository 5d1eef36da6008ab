"""MLflow runs for sparkdl runs: a parent per pipeline run with a child per step, or one run
per single command; everything logged from the driver after a step.

:func:`open_tracking` decides whether tracking is on and, when it is, checks the tracking URI
at once, so an unreachable server fails the run before any Spark work. Later logging that fails
(the server went away during training) is a warning: a finished step is not lost to it.

A resumed pipeline run continues its parent run (found by its run folder's tag) with children
for the steps that run now; the steps done before keep the children they had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkdl.config.tracking import TrackingConfig
from sparkdl.errors import BadInputError, RunInterruptedError, SparkdlError
from sparkdl.tracking import params as P
from sparkdl.tracking.metrics import Point, metric_points, reference_points
from sparkdl.tracking.outputs import command_output, dataset_version, model_json_version, read_json
from sparkdl.tracking.uri import check_reachable, file_store_path, redact, resolve_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sparkdl.config.schema import SparkdlConfig

logger = logging.getLogger(__name__)

Record = Callable[[Any], None]
TAG_KIND = "sparkdl.kind"
_BATCH_PARAMS = 100  # MLflow's limit of params and tags per log_batch call
_BATCH_METRICS = 1000


def mlflow_importable() -> bool:
    """Whether mlflow can be imported here (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def open_tracking(cfg: TrackingConfig) -> Tracker:
    """The tracker of one sparkdl run: off, or on with its tracking URI checked now.

    Raises
    ------
    BadInputError
        ``tracking.mlflow`` is true but mlflow is not installed, or the URI is unusable.
    InfraError
        A tracking server that cannot be reached (see
        :func:`sparkdl.tracking.uri.check_reachable`).

    Examples
    --------
    >>> open_tracking(TrackingConfig(mlflow=False)).enabled
    False
    """
    on = cfg.mlflow if cfg.mlflow is not None else mlflow_importable()
    if not on:
        return Tracker(cfg, uri=None)
    if not mlflow_importable():
        raise BadInputError(
            "tracking.mlflow is true but mlflow is not installed; run scripts/setup.sh (or pip "
            "install -c requirements/constraints.txt mlflow-skinny), or set tracking.mlflow=false"
        )
    # MLflow reports usage to its developers unless told not to; a cluster driver has no
    # business doing that unasked (and often no route out).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = resolve_uri(cfg)
    if file_store_path(uri) is not None:
        # MLflow 3.17 keeps its file store in maintenance mode behind this opt-in; it is the
        # store the issue asks for by default (./mlruns), and it needs no server or database
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    check_reachable(uri, timeout_s=cfg.check_timeout_s)
    logger.info("tracking runs in MLflow at %s, experiment %r", redact(uri), cfg.experiment)
    return Tracker(cfg, uri=uri)


class Tracker:
    """Opens and fills MLflow runs; with ``uri=None`` (tracking off) every call does nothing."""

    def __init__(self, cfg: TrackingConfig, *, uri: str | None) -> None:
        self.cfg = cfg
        self.uri = uri
        self._client: Any = None
        self._experiment: str | None = None
        self._commit = P.git_commit() if uri else None

    @property
    def enabled(self) -> bool:
        """Whether runs are logged."""
        return self.uri is not None

    # ---- the two ways in: a pipeline run, a single command -----------------------------------

    @contextlib.contextmanager
    def pipeline(
        self, spark: SparkSession, *, cfg: SparkdlConfig, run_id: str, run_dir: str
    ) -> Iterator[PipelineRun]:
        """The parent run of pipeline run ``run_id``, opened (or continued, when an earlier
        attempt opened it) when the first step runs: a run with nothing left to do, or one
        refused before its first step, leaves MLflow alone."""
        parent = PipelineRun(self, spark, cfg, run_id=run_id, run_dir=run_dir)
        try:
            yield parent
        except BaseException as exc:
            if parent.run is not None:
                self._end(parent.run, exc)
            raise
        if parent.run is not None:
            self._end(parent.run, None)

    @contextlib.contextmanager
    def command(self, spark: SparkSession, name: str, cfg: SparkdlConfig) -> Iterator[None]:
        """One run for a single command; its results are read from its outputs after it."""
        output = command_output(name, cfg)
        if not self.enabled or output is None:
            yield
            return
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        run_id = f"{name}-{stamp}-{os.getpid()}"  # as its log file is named
        tags = {**P.run_tags(run_id=run_id, step=name, commit=self._commit), TAG_KIND: name}
        with self._run(name, tags=tags, params=P.config_params(cfg)) as mlflow_run:
            yield
            self.record(spark, mlflow_run, output)

    # ---- runs ----------------------------------------------------------------------------------

    def _mlflow(self) -> Any:
        """The client and the experiment id, made on first use."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
            self._experiment = self._experiment_id(self.cfg.experiment)
        return self._client

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self._client
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise BadInputError(
                    f"tracking.experiment {name!r} is deleted in {redact(self.uri or '')}; "
                    "restore it (mlflow experiments restore) or choose another name"
                )
            return found.experiment_id
        try:
            return client.create_experiment(name)
        except MlflowException:  # created meanwhile by a concurrent run
            again = client.get_experiment_by_name(name)
            if again is None:
                raise
            return again.experiment_id

    def _find_parent(self, run_dir: str) -> str | None:
        """The parent run an earlier attempt of this pipeline run opened, if any."""
        if "'" in run_dir:
            return None
        runs = self._mlflow().search_runs(
            [self._experiment],
            filter_string=f"tags.`{P.TAG_RUN_DIR}` = '{run_dir}' and tags.`{TAG_KIND}` = 'pipeline'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def _open(
        self,
        name: str,
        *,
        tags: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        parent: str | None = None,
        resume: str | None = None,
    ) -> str:
        """Create an MLflow run (or set run ``resume`` running again); return its id."""
        client = self._mlflow()
        if resume is not None:
            client.update_run(resume, status="RUNNING")
            run_id = resume
            self.set_tags(run_id, tags)
        else:
            full = {**tags, P.TAG_PARENT: parent} if parent else dict(tags)
            run_id = client.create_run(self._experiment, run_name=name, tags=full).info.run_id
            if params:
                self._safely("params", run_id, lambda: self._log_params(run_id, params))
        logger.info("MLflow run %s (%s) %s", run_id, name, "continued" if resume else "started")
        return run_id

    def _end(self, run_id: str, exc: BaseException | None) -> None:
        """End run ``run_id``: FINISHED, KILLED when interrupted, else FAILED."""
        if exc is None:
            status = "FINISHED"
        elif isinstance(exc, KeyboardInterrupt | RunInterruptedError):
            status = "KILLED"
        else:
            status = "FAILED"
        self._safely("status", run_id, lambda: self._client.set_terminated(run_id, status=status))

    @contextlib.contextmanager
    def _run(self, name: str, **kwargs: Any) -> Iterator[str]:
        """An MLflow run around the body (see :meth:`_open` and :meth:`_end`)."""
        run_id = self._open(name, **kwargs)
        try:
            yield run_id
        except BaseException as exc:
            self._end(run_id, exc)
            raise
        self._end(run_id, None)

    # ---- logging -------------------------------------------------------------------------------

    def _safely(self, what: str, run_id: str, call: Callable[[], Any]) -> None:
        """Log ``what``; a failure is a warning, so a finished step is not lost to tracking."""
        from mlflow.exceptions import MlflowException

        try:
            call()
        except (MlflowException, OSError) as exc:
            logger.warning(
                "could not log %s to MLflow run %s at %s (%s: %s); the run goes on without it",
                what,
                run_id,
                redact(self.uri or ""),
                type(exc).__name__,
                redact(str(exc).splitlines()[0] if str(exc) else ""),
            )

    def _log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self._client.log_batch(run_id, params=items[i : i + _BATCH_PARAMS])

    def set_tags(self, run_id: str | None, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on run ``run_id`` (nothing when tracking is off)."""
        if run_id is None or not tags:
            return
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]

        def send() -> None:
            for i in range(0, len(items), _BATCH_PARAMS):
                self._client.log_batch(run_id, tags=items[i : i + _BATCH_PARAMS])

        self._safely("tags", run_id, send)

    def log_points(self, run_id: str, points: list[Point]) -> None:
        """Log metric ``points`` to run ``run_id`` (per-epoch ones with their step)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(p.key, p.value, now, p.step) for p in points]

        def send() -> None:
            for i in range(0, len(items), _BATCH_METRICS):
                self._client.log_batch(run_id, metrics=items[i : i + _BATCH_METRICS])

        self._safely("metrics", run_id, send)

    def record(self, spark: SparkSession, run_id: str, output: Any) -> str | None:
        """Log what a step's output record points at; return its dataset version, if known.

        ``metrics`` (a ``metrics.json``) becomes metrics, ``compare`` (the comparison's
        ``compare.json``) MLlib's numbers prefixed ``mllib_``, ``splits`` rows per split, ``model`` the pyfunc model (with
        ``tracking.log_model``), ``version`` the dataset version tag.
        """
        fields = dataclasses.asdict(output) if dataclasses.is_dataclass(output) else {}
        version = fields.get("version")
        points = [Point(f"rows_{s}", float(n)) for s, n in (fields.get("splits") or {}).items()]
        try:
            if fields.get("metrics"):
                doc = read_json(spark, fields["metrics"])
                points += metric_points(doc)
                version = version or dataset_version(doc) or model_json_version(spark, fields)
            if fields.get("compare"):
                points += reference_points(read_json(spark, fields["compare"]))
        except (
            SparkdlError,
            OSError,
            ValueError,
        ) as exc:  # unreadable results: not the step's fault
            logger.warning(
                "could not read the results of MLflow run %s to log them: %s", run_id, exc
            )
        if points:
            self.log_points(run_id, points)
        if version:
            self.set_tags(run_id, {P.TAG_DATASET: version})
        if fields.get("model") and self.cfg.log_model:
            self._safely(
                "the model", run_id, lambda: self._log_model(spark, run_id, fields["model"])
            )
        return version

    def _log_model(self, spark: SparkSession, run_id: str, model: str) -> None:
        from sparkdl.tracking.pyfunc import ARTIFACT_PATH, save_pyfunc

        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="sparkdl-mlflow-model-") as tmp:
            saved = save_pyfunc(spark, model=model, path=Path(tmp) / ARTIFACT_PATH)
            self._client.log_artifacts(run_id, str(saved), ARTIFACT_PATH)
        logger.info(
            "logged the pyfunc model of %s to MLflow run %s as %r (%.1f s)",
            model,
            run_id,
            ARTIFACT_PATH,
            time.perf_counter() - start,
        )


class PipelineRun:
    """A pipeline's parent run: :meth:`step` opens each step's child run."""

    def __init__(
        self, tracker: Tracker, spark: Any, cfg: SparkdlConfig, *, run_id: str, run_dir: str
    ) -> None:
        self.tracker = tracker
        self.spark = spark
        self.cfg = cfg
        self.run_id = run_id
        self.run_dir = run_dir
        self.run: str | None = None  # the parent's MLflow run id, once opened
        self.dataset_version: str | None = None

    def _parent(self) -> str:
        """Open the parent run, or continue the one an earlier attempt opened."""
        if self.run is None:
            tracker = self.tracker
            earlier = tracker._find_parent(self.run_dir)
            if earlier is not None:
                tags = tracker._client.get_run(earlier).data.tags
                self.dataset_version = tags.get(P.TAG_DATASET)
            tags = {
                **P.run_tags(run_id=self.run_id, commit=tracker._commit),
                P.TAG_RUN_DIR: self.run_dir,
                TAG_KIND: "pipeline",
            }
            name = f"pipeline {self.run_id}"
            params = P.config_params(self.cfg)
            self.run = tracker._open(name, tags=tags, params=params, resume=earlier)
        return self.run

    @contextlib.contextmanager
    def step(self, step: str) -> Iterator[Record]:
        """The child run of ``step``; call the yielded function with the step's output record."""
        tracker = self.tracker
        if not tracker.enabled:
            yield lambda output: None
            return
        parent = self._parent()
        tags = {
            **P.run_tags(
                run_id=self.run_id,
                dataset_version=self.dataset_version,
                step=step,
                commit=tracker._commit,
            ),
            TAG_KIND: "step",
        }
        params = P.config_params(self.cfg, sections=P.STEP_SECTIONS.get(step, ()))
        with tracker._run(step, tags=tags, params=params, parent=parent) as child:

            def record(output: Any) -> None:
                version = tracker.record(self.spark, child, output)
                if version and version != self.dataset_version:
                    self.dataset_version = version
                    tracker.set_tags(parent, {P.TAG_DATASET: version})

            yield record
