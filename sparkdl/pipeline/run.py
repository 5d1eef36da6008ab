"""``sparkdl pipeline``: generate -> prepare -> train -> baselines -> evaluate -> report.

One run is keyed by its run id (default: the run date). Its folder, ``<pipeline.root>/<run id>``,
holds ``state.json``, a log file and every step's output; re-running a finished run does
nothing, re-running a failed one resumes at the first unfinished step (training itself resumes
from its last checkpoint). ``pipeline.root`` is a store location like every output (a shared
mount, ``file:``, ``hdfs://``, ``s3a://``, ``abfss://``, ``dbfs:/``): the driver writes the state,
the log and the report through Spark's Hadoop file system; on a store that is not mounted the
log is kept in the driver's temporary folder and published after every step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.loader import to_dict
from sparkdl.config.schema import SparkdlConfig
from sparkdl.lock import output_lock
from sparkdl.pipeline.outputs import (
    ReportOutput,
)
from sparkdl.pipeline.runlog import RunLog
from sparkdl.pipeline.state import DONE, RunState, check_run_date, check_run_id, run_folder
from sparkdl.steps import STEPS, RunContext, StepOptions
from sparkdl.store import Location
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore
from sparkdl.tracking import PipelineRun, open_tracking

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineResult:
    """How a pipeline run ended."""

    run_id: str
    run_dir: str
    ran: list[str]
    skipped: list[str]
    report: str | None
    seconds: float


def run_config(cfg: SparkdlConfig, run_dir: Location) -> SparkdlConfig:
    """Point every step's inputs and outputs at the run: data from ``prepare.output``, results
    under ``run_dir``."""
    data = cfg.prepare.output
    return dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, dataset=data, output=run_dir.child("train").uri),
        sgd=dataclasses.replace(cfg.sgd, dataset=data, output=run_dir.child("sgd").uri),
        kmeans=dataclasses.replace(
            cfg.kmeans, dataset=data, split="train", output=run_dir.child("kmeans").uri
        ),
        evaluate=dataclasses.replace(
            cfg.evaluate,
            model=run_dir.child("train", "model").uri,
            dataset=None,
            output=run_dir.child("evaluate").uri,
        ),
    )


def _step_config(spark: SparkSession, step: str, cfg: SparkdlConfig) -> SparkdlConfig:
    """The config a step runs with in the pipeline: k-means gets ``pipeline.kmeans_k``, else as
    many clusters as the prepared dataset has classes (at least 2)."""
    if step != "kmeans":
        return cfg
    from sparkdl.data.dataset import open_dataset

    k = cfg.pipeline.kmeans_k or max(2, open_dataset(spark, cfg.kmeans.dataset).num_classes)
    return dataclasses.replace(cfg, kmeans=dataclasses.replace(cfg.kmeans, k=k))


def _options(cfg: SparkdlConfig, run_dir: Location, state: RunState) -> StepOptions:
    """What the pipeline adds to each step: the MLlib references (no scikit-learn: it reads
    the data on the driver) and the run the report belongs to."""
    return StepOptions(
        compare=cfg.pipeline.compare_mllib,
        sklearn=False,
        cost_iterations=cfg.pipeline.mllib_cost_iterations,
        run=RunContext(run_dir=run_dir, state=state),
    )


def default_run_date() -> str:
    """Today's date in UTC (``YYYY-MM-DD``), the default run date and run id."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def _config_hash(cfg: SparkdlConfig) -> str:
    import hashlib

    settings = to_dict(cfg)
    settings.pop("spark", None)  # where it runs does not change what it computes
    settings.pop("tracking", None)  # nor where it is tracked
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _say(text: str) -> None:
    print(f"[sparkdl pipeline] {text}", file=sys.stderr, flush=True)


def run_pipeline(
    spark: SparkSession,
    *,
    cfg: SparkdlConfig,
    run_id: str | None = None,
    run_date: str | None = None,
) -> PipelineResult:
    """Run (or resume) one pipeline run; see the module docstring.

    The run folder is locked while the run goes on: a second run with the same run id is
    refused (:class:`~sparkdl.errors.OutputLockedError`).

    Raises
    ------
    BadInputError
        A run id that is not one folder name inside ``pipeline.root``, a run date that is not
        a real ``YYYY-MM-DD`` date, or a ``pipeline.root`` that the driver cannot write or,
        with a non-local master, the executors cannot reach.

    Examples
    --------
    >>> run_pipeline(spark, cfg=cfg, run_id="nightly-2026-11-22").report  # doctest: +SKIP
    'runs/pipeline/nightly-2026-11-22/report/report.md'
    """
    start = time.perf_counter()
    run_date = check_run_date(default_run_date() if run_date is None else run_date)
    run_id = check_run_id(run_date if run_id is None else run_id)
    run_dir = run_folder(cfg.pipeline.root, run_id)
    tracking = open_tracking(cfg.tracking)  # an unreachable tracking URI fails here, first
    # every step writes below it, from the driver and the executors: all nodes must reach it
    check_output(spark, run_dir, key="pipeline.root")
    cfg = run_config(cfg, run_dir)
    with (
        output_lock(run_dir.uri, what="pipeline run folder (pipeline.root/--run-id)", spark=spark),
        tracking.pipeline(spark, cfg=cfg, run_id=run_id, run_dir=run_dir.uri) as tracked,
    ):
        return _run_locked(
            spark,
            cfg=cfg,
            run_dir=run_dir,
            run_id=run_id,
            run_date=run_date,
            start=start,
            tracked=tracked,
        )


def _run_locked(
    spark: SparkSession,
    *,
    cfg: SparkdlConfig,
    run_dir: Location,
    run_id: str,
    run_date: str,
    start: float,
    tracked: PipelineRun,
) -> PipelineResult:
    """Run the steps left in ``run_dir`` while holding its lock; ``tracked`` logs each step."""
    store = HadoopStore(spark, run_dir)
    state = RunState.open(store, run_id=run_id, run_date=run_date, config_hash=_config_hash(cfg))
    log = RunLog(store)
    steps = [s for s, step in STEPS.items() if step.in_pipeline and s in cfg.pipeline.steps]
    options = _options(cfg, run_dir, state)
    ran, skipped = [], []
    try:
        for i, step in enumerate(steps, 1):
            if state.status(step) == DONE:
                skipped.append(step)
                _say(f"{i}/{len(steps)} {step}: done in an earlier attempt, skipped")
                continue
            _say(f"{i}/{len(steps)} {step} ...")
            state.start(step)
            try:
                with tracked.step(step) as record:
                    result = STEPS[step].run(spark, _step_config(spark, step, cfg), options)
                    record(result.output)
            except BaseException as exc:
                state.fail(step, "".join(traceback.format_exception_only(type(exc), exc)))
                _say(
                    f"{i}/{len(steps)} {step} FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
                raise
            state.finish(step, result)
            ran.append(step)
            _say(f"{i}/{len(steps)} {step}: {result.summary} ({_seconds(state, step):.1f} s)")
            log.publish()
    finally:
        log.close()
    report = state.output("report", ReportOutput)
    _say(summary_table(state, steps))
    return PipelineResult(
        run_id=run_id,
        run_dir=run_dir.uri,
        ran=ran,
        skipped=skipped,
        report=report.report if report else None,
        seconds=time.perf_counter() - start,
    )


def summary_table(state: RunState, steps: list[str]) -> str:
    """The end-of-run table: each step's status, time and one-line result."""
    from sparkdl.bench.measure import format_table

    rows = []
    for step in steps:
        entry = state.step(step)
        rows.append(
            [
                step,
                entry.status if entry else "-",
                f"{_seconds(state, step):.1f}",
                (entry.summary or "")[:90] if entry else "",
            ]
        )
    return (
        "summary of run "
        + state.run_id
        + "\n"
        + format_table(["step", "status", "s", "result"], rows)
    )


def _seconds(state: RunState, step: str) -> float:
    """How long ``step`` took (0 when it has not finished)."""
    entry = state.step(step)
    return (entry.seconds or 0.0) if entry else 0.0
