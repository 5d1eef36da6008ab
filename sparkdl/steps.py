"""The step registry: one function per step, called by the CLI, the pipeline and the Python API.

``sparkdl <command>`` (:mod:`sparkdl.commands`), ``sparkdl pipeline``
(:mod:`sparkdl.pipeline.run`) and :func:`run_step` look a step up in :data:`STEPS` and call the
same function with the same config; each returns a :class:`~sparkdl.pipeline.outputs.StepResult`
(its one-line summary and a typed record of its outputs, which the pipeline stores in its run
state and the report reads back). What differs between callers is only in
:class:`StepOptions`: ``--force``, ``--compare`` (or ``pipeline.compare_mllib``), whether the
comparison includes scikit-learn on the driver, a DataFrame for ``prepare``, and the pipeline
run a report belongs to.

Examples
--------
>>> [name for name, step in STEPS.items() if step.in_pipeline]
['generate', 'prepare', 'train', 'sgd', 'kmeans', 'evaluate', 'report']
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdl.config.schema import SparkdlConfig
from sparkdl.errors import BadInputError
from sparkdl.pipeline.outputs import (
    CheckOutput,
    EvaluateOutput,
    GenerateOutput,
    KmeansOutput,
    PredictOutput,
    PrepareOutput,
    ReportOutput,
    SgdOutput,
    StepResult,
    TrainOutput,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sparkdl.pipeline.state import RunState
    from sparkdl.store import Location

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """The pipeline run a step runs in: its folder and its state."""

    run_dir: Location
    state: RunState


@dataclass(frozen=True)
class StepOptions:
    """What a caller adds to the config.

    Attributes
    ----------
    force : bool
        ``prepare``: rebuild even when this input and config are published.
    compare : bool or None
        ``sgd``, ``kmeans``: also fit the Spark MLlib references (and scikit-learn, with
        ``sklearn``) on the same data, into the step's ``compare.json`` and ``compare.md``;
        None: as the step's config says (``sgd.compare``, ``kmeans.compare``).
    sklearn : bool
        Include scikit-learn (on the driver, so only for data that fits) in the comparison.
    cost_iterations : int
        ``kmeans`` with ``compare``: also MLlib's cost after each of the first this many
        iterations (one MLlib fit each; the pipeline report plots it).
    frame : DataFrame or None
        ``prepare``: the rows to prepare instead of ``prepare.input``.
    run : RunContext or None
        ``report``: the pipeline run to report on.
    """

    force: bool = False
    compare: bool | None = None
    sklearn: bool = True
    cost_iterations: int = 0
    frame: DataFrame | None = None
    run: RunContext | None = None


StepFn = Callable[["SparkSession", SparkdlConfig, StepOptions], StepResult]


def generate(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Write synthetic raw data (``generate``)."""
    from sparkdl.data.generate import write_generated

    r = write_generated(spark, cfg=cfg.generate)
    return StepResult(r.summary(), GenerateOutput(path=cfg.generate.output))


def prepare(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Validate, featurize, split and publish (``prepare``)."""
    from sparkdl.data.prepare import run_prepare

    r = run_prepare(spark, cfg=cfg.prepare, force=options.force, frame=options.frame)
    verb = "already published" if r.skipped else "published"
    summary = (
        f"{verb} {r.root} version {r.version}: {r.rows_in} rows in, {r.rows_valid} valid, "
        f"{r.rows_quarantined} quarantined, splits {r.split_rows} ({r.seconds:.1f} s)"
    )
    if r.declaration:
        summary += (
            "\ncolumns inferred from the data; paste this into the config to declare them:\n"
            + r.declaration.rstrip()
        )
    return StepResult(
        summary, PrepareOutput(dataset=r.root, version=r.version, splits=dict(r.split_rows))
    )


def train(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Train on Horovod ranks in a barrier stage (``train``)."""
    from sparkdl.train.runner import run_training

    r = run_training(spark, train=cfg.train, launch=cfg.launch)
    test = ", ".join(f"{k} {v:.4f}" for k, v in r.test.items()) or "no test split"
    summary = (
        f"trained {len(r.history)} epochs on {r.workers} Horovod ranks in {r.wall_s:.1f} s "
        f"({r.attempts} attempt(s), {r.samples_per_s:,.0f} samples/s); test: {test}; model and "
        f"metrics.json in {r.output}"
    )
    return StepResult(summary, TrainOutput(model=r.export_dir, metrics=f"{r.output}/metrics.json"))


def sgd(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """ParallelSGD, and its references with ``compare`` (``sgd``)."""
    from sparkdl.baselines.compare import compare_sgd
    from sparkdl.baselines.sgd import run_parallel_sgd
    from sparkdl.lock import output_lock

    # held across the fit and the comparison, which writes compare.json next to the model
    with output_lock(cfg.sgd.output, what="sgd.output", spark=spark):
        r = run_parallel_sgd(spark, cfg=cfg.sgd)
        test = ", ".join(f"{k} {v:.4f}" for k, v in r.test.items()) or "no test split"
        summary = (
            f"ParallelSGD {r.kind} ({cfg.sgd.mode}, {r.partitions} partitions, "
            f"{cfg.sgd.epochs} epochs) on {r.rows} rows in {r.wall_s:.1f} s; test: {test}; "
            f"model and metrics.json in {r.output}"
        )
        output = SgdOutput(metrics=f"{r.output}/metrics.json")
        compare = cfg.sgd.compare if options.compare is None else options.compare
        if compare and r.kind != "linear":
            done = compare_sgd(spark, cfg=cfg.sgd, result=r, sklearn=options.sklearn)
            output = dataclasses.replace(output, compare=done.json)
            summary += f"; comparison in {done.markdown}"
        elif compare:
            summary += "; no comparison (it covers logistic/softmax, not linear)"
    return StepResult(summary, output)


def kmeans(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Distributed k-means, and its references with ``compare`` (``kmeans``)."""
    from sparkdl.baselines.compare import compare_kmeans
    from sparkdl.baselines.kmeans import run_kmeans
    from sparkdl.lock import output_lock

    km = cfg.kmeans
    with output_lock(km.output, what="kmeans.output", spark=spark):
        r = run_kmeans(spark, cfg=km)
        scores = ", ".join(f"{k} {v:.4g}" for k, v in r.metrics.items())
        summary = (
            f"k-means k={km.k} on {r.rows} rows: {r.iterations} iterations "
            f"({'converged' if r.converged else 'max_iter reached'}), {scores}, "
            f"{r.iterations_s / max(r.passes, 1):.3f} s per Lloyd pass ({km.n_init} "
            f"starts raced); model and metrics.json in {r.output}"
        )
        output = KmeansOutput(metrics=f"{r.output}/metrics.json")
        if km.compare if options.compare is None else options.compare:
            done = compare_kmeans(
                spark,
                cfg=km,
                result=r,
                sklearn=options.sklearn,
                cost_iterations=options.cost_iterations,
            )
            output = dataclasses.replace(output, compare=done.json)
            summary += f"; comparison in {done.markdown}"
    return StepResult(summary, output)


def evaluate(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Score a trained model on a prepared split on the executors (``evaluate``)."""
    from sparkdl.serve.evaluate import run_evaluate

    r = run_evaluate(spark, cfg=cfg.evaluate)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items() if isinstance(v, float))
    return StepResult(
        f"evaluated {r.rows} rows in {r.seconds:.1f} s: {shown}; metrics.json in {r.output}",
        EvaluateOutput(metrics=f"{r.output}/metrics.json"),
    )


def predict(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """Batch inference written as Parquet (``predict``)."""
    from sparkdl.serve.predict import run_predict

    r = run_predict(spark, cfg=cfg.predict)
    return StepResult(
        f"wrote {r.rows} predictions to {r.output} in {r.seconds:.1f} s",
        PredictOutput(predictions=r.output, rows=r.rows),
    )


def allreduce_check(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """All-reduce known tensors on Horovod ranks and verify (``allreduce-check``)."""
    from sparkdl.launch.smoke import run_allreduce_check

    report = run_allreduce_check(spark, launch=cfg.launch, check=cfg.allreduce_check)
    return StepResult(report.format(), CheckOutput(ok=report.ok), ok=report.ok)


def report(spark: SparkSession, cfg: SparkdlConfig, options: StepOptions) -> StepResult:
    """The pipeline run's report, from the outputs its state records (``report``)."""
    from sparkdl.pipeline.report import write_report
    from sparkdl.store.hadoop import HadoopStore

    if options.run is None:
        raise BadInputError("the report step reports on a pipeline run: run `sparkdl pipeline`")
    run_dir = options.run.run_dir
    path = write_report(
        HadoopStore(spark, run_dir.child("report")),
        state=options.run.state,
        store_at=lambda loc: HadoopStore(spark, loc),
    )
    return StepResult(f"report at {path}", ReportOutput(report=path))


@dataclass(frozen=True)
class Step:
    """One registered step: its function, help line, and where it is used."""

    run: StepFn
    help: str
    training: bool = False  # its session needs the launch settings (barrier stages)
    in_pipeline: bool = True
    add_arguments: Callable[[Any], None] | None = None


def _add_force(parser: Any) -> None:
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if this input and config are published"
    )


def _add_compare(parser: Any) -> None:
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run Spark MLlib and scikit-learn on the same data and write compare.md",
    )


# in pipeline order
STEPS: dict[str, Step] = {
    "generate": Step(
        generate, "write synthetic raw data (classification or blobs) from the executors"
    ),
    "prepare": Step(
        prepare,
        "validate, featurize, split and publish raw data as training-ready Parquet",
        add_arguments=_add_force,
    ),
    "train": Step(
        train,
        "train a Keras model on a prepared dataset with Horovod ranks in a barrier stage",
        training=True,
    ),
    "sgd": Step(
        sgd,
        "ParallelSGD baseline: per-partition numpy SGD, weights averaged on the driver",
        add_arguments=_add_compare,
    ),
    "kmeans": Step(
        kmeans,
        "distributed k-means (k-means|| init, Lloyd with tree reduction) baseline",
        add_arguments=_add_compare,
    ),
    "evaluate": Step(
        evaluate,
        "score a trained model on a prepared split on the executors (accuracy, log loss, AUC)",
    ),
    "predict": Step(
        predict,
        "batch inference on a prepared split or new raw data, written as Parquet",
        in_pipeline=False,
    ),
    "report": Step(report, "the pipeline run's report", in_pipeline=True),
    "allreduce-check": Step(
        allreduce_check,
        "all-reduce known tensors on Horovod ranks and verify",
        training=True,
        in_pipeline=False,
    ),
}


def run_step(
    name: str,
    *,
    config: SparkdlConfig | None = None,
    spark: SparkSession | None = None,
    options: StepOptions | None = None,
) -> StepResult:
    """Run step ``name`` in ``spark`` (default: the active session) with ``config``.

    Parameters
    ----------
    name : str
        A key of :data:`STEPS`.
    config : SparkdlConfig, optional
        Default: the defaults (``load_config(SparkdlConfig)``).
    spark : SparkSession, optional
        Default: the active session, else ``SparkSession.builder.getOrCreate()``.
    options : StepOptions, optional

    Raises
    ------
    BadInputError
        For an unknown step name (naming the closest), and whatever the step refuses.
    InfraError
        For an MLflow tracking URI (``tracking``) that cannot be reached, before the step.

    Examples
    --------
    >>> run_step("prepare", config=cfg, options=StepOptions(frame=df)).output.version  # doctest: +SKIP
    '20261203T101500000000-ab12cd34ef56ab78'
    """
    from sparkdl.config.loader import closest_key, load_config

    if name not in STEPS:
        hint = closest_key(name, list(STEPS))
        raise BadInputError(
            f"no step {name!r}{f'; did you mean {hint!r}?' if hint else ''} Steps: "
            f"{', '.join(STEPS)}"
        )
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    from sparkdl.tracking import open_tracking

    cfg = config if config is not None else load_config(SparkdlConfig)
    tracking = open_tracking(cfg.tracking)  # an unreachable tracking URI fails here, first
    with tracking.command(spark, name, cfg):  # one MLflow run, as for the CLI's command
        return STEPS[name].run(spark, cfg, options or StepOptions())
