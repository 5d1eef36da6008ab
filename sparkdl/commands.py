"""The Spark-backed commands, shared by ``sparkdl <command>`` and the ``jobs/*.py`` entry points.

Each command gets a validated config and a session, and returns its one-line summary and
whether it succeeded. :func:`run_command` owns what they share: loading the config, building
and stopping the session, and the exit codes that scheduled pipelines act on.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkdl.config.args import add_config_arguments, config_from_args
from sparkdl.config.schema import SparkdlConfig
from sparkdl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INFRA, EXIT_OK, BadInputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INFRA", "EXIT_OK", "run_command"]

Outcome = tuple[str, bool]


def _generate(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.data.generate import write_generated

    return write_generated(spark, cfg=cfg.generate).summary(), True


def _prepare(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.data.prepare import run_prepare

    r = run_prepare(spark, cfg=cfg.prepare, force=getattr(args, "force", False))
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
    return summary, True


def _train(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.train.runner import run_training

    r = run_training(spark, train=cfg.train, launch=cfg.launch)
    test = ", ".join(f"{k} {v:.4f}" for k, v in r.test.items()) or "no test split"
    return (
        f"trained {len(r.history)} epochs on {r.workers} Horovod ranks in {r.wall_s:.1f} s "
        f"({r.attempts} attempt(s), {r.samples_per_s:,.0f} samples/s); test: {test}; model and "
        f"metrics.json in {r.output}"
    ), True


def _allreduce(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.launch.smoke import run_allreduce_check

    report = run_allreduce_check(spark, launch=cfg.launch, check=cfg.allreduce_check)
    return report.format(), report.ok


def _sgd(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.lock import output_lock

    # held across the fit and the comparison, which writes compare.md next to the model
    with output_lock(cfg.sgd.output, what="sgd.output", spark=spark):
        return _sgd_locked(spark, cfg, args)


def _sgd_locked(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.baselines.sgd import run_parallel_sgd

    r = run_parallel_sgd(spark, cfg=cfg.sgd)
    test = ", ".join(f"{k} {v:.4f}" for k, v in r.test.items()) or "no test split"
    summary = (
        f"ParallelSGD {r.kind} ({cfg.sgd.mode}, {r.partitions} partitions, "
        f"{cfg.sgd.epochs} epochs) on {r.rows} rows in {r.wall_s:.1f} s; test: {test}; "
        f"model and metrics.json in {r.output}"
    )
    if cfg.sgd.compare or getattr(args, "compare", False):
        from sparkdl.baselines.compare import compare_sgd

        summary += f"; comparison in {compare_sgd(spark, cfg=cfg.sgd, result=r)}"
    return summary, True


def _kmeans(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.lock import output_lock

    with output_lock(cfg.kmeans.output, what="kmeans.output", spark=spark):
        return _kmeans_locked(spark, cfg, args)


def _kmeans_locked(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.baselines.kmeans import run_kmeans

    r = run_kmeans(spark, cfg=cfg.kmeans)
    scores = ", ".join(f"{k} {v:.4g}" for k, v in r.metrics.items())
    summary = (
        f"k-means k={cfg.kmeans.k} on {r.rows} rows: {r.iterations} iterations "
        f"({'converged' if r.converged else 'max_iter reached'}), {scores}, "
        f"{r.iterations_s / max(r.passes, 1):.3f} s per Lloyd pass ({cfg.kmeans.n_init} "
        f"starts raced); model and metrics.json in {r.output}"
    )
    if cfg.kmeans.compare or getattr(args, "compare", False):
        from sparkdl.baselines.compare import compare_kmeans

        summary += f"; comparison in {compare_kmeans(spark, cfg=cfg.kmeans, result=r)}"
    return summary, True


def _evaluate(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.serve.evaluate import run_evaluate

    r = run_evaluate(spark, cfg=cfg.evaluate)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items() if isinstance(v, float))
    return (
        f"evaluated {r.rows} rows in {r.seconds:.1f} s: {shown}; metrics.json in {r.output}",
        True,
    )


def _predict(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.serve.predict import run_predict

    r = run_predict(spark, cfg=cfg.predict)
    return f"wrote {r.rows} predictions to {r.output} in {r.seconds:.1f} s", True


def _pipeline(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
    from sparkdl.pipeline.run import run_pipeline

    r = run_pipeline(spark, cfg=cfg, run_id=args.run_id, run_date=args.run_date)
    did = f"ran {', '.join(r.ran)}" if r.ran else "nothing left to run"
    skipped = f"; skipped (done earlier): {', '.join(r.skipped)}" if r.skipped else ""
    return f"pipeline run {r.run_id}: {did}{skipped} in {r.seconds:.1f} s; report: {r.report}", True


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-id",
        default=None,
        help="the run to start or resume, one folder name inside pipeline.root: 1-128 letters, "
        "digits, '.', '_' or '-' (default: the run date)",
    )
    parser.add_argument(
        "--run-date",
        default=None,
        help="the run's logical date, a real date as YYYY-MM-DD (default: today, UTC)",
    )


def _add_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run Spark MLlib and scikit-learn on the same data and write compare.md",
    )


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if this input and config are published"
    )


@dataclass(frozen=True)
class Command:
    """One Spark-backed command."""

    run: Callable[[SparkSession, SparkdlConfig, argparse.Namespace], Outcome]
    training: bool
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: dict[str, Command] = {
    "generate": Command(
        _generate, False, "write synthetic raw data (classification or blobs) from the executors"
    ),
    "prepare": Command(
        _prepare,
        False,
        "validate, featurize, split and publish raw data as training-ready Parquet",
        _add_force,
    ),
    "train": Command(
        _train,
        True,
        "train a Keras model on a prepared dataset with Horovod ranks in a barrier stage",
    ),
    "sgd": Command(
        _sgd,
        False,
        "ParallelSGD baseline: per-partition numpy SGD, weights averaged on the driver",
        _add_compare,
    ),
    "kmeans": Command(
        _kmeans,
        False,
        "distributed k-means (k-means|| init, Lloyd with tree reduction) baseline",
        _add_compare,
    ),
    "evaluate": Command(
        _evaluate,
        False,
        "score a trained model on a prepared split on the executors (accuracy, log loss, AUC)",
    ),
    "predict": Command(
        _predict, False, "batch inference on a prepared split or new raw data, written as Parquet"
    ),
    "pipeline": Command(
        _pipeline,
        True,
        "generate -> prepare -> train -> baselines -> evaluate -> report, resumable by run id",
        _add_run,
    ),
    "allreduce-check": Command(
        _allreduce, True, "all-reduce known tensors on Horovod ranks and verify"
    ),
}


def add_command_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Add ``--config``/``--set`` and the command's own options to ``parser``."""
    add_config_arguments(parser)
    extra = COMMANDS[name].add_arguments
    if extra is not None:
        extra(parser)


def run_command(name: str, args: argparse.Namespace) -> int:
    """Load the config, build the session, run command ``name``, print its summary.

    Returns
    -------
    int
        The exit code, chosen by the class of the error that ended the command
        (:mod:`sparkdl.errors`, :func:`sparkdl.exits.guarded`): 0 success; 1 the command ran but
        a check did not hold, or an unexpected error (traceback in the log file); 2 bad input
        or config, or a cluster that must change first (nothing was changed); 3 infrastructure
        (Horovod ranks or baseline tasks that failed every attempt, Spark job failures): retrying
        later may help; 130 interrupted (SIGINT/SIGTERM), no attempt spent.

    Examples
    --------
    >>> run_command("prepare", parsed_args)  # doctest: +SKIP
    0
    """
    from sparkdl.exits import guarded

    return guarded(name, lambda: _run(name, args))


def _run(name: str, args: argparse.Namespace) -> int:
    """The body of :func:`run_command`: config, session, command, summary."""
    from sparkdl.interrupts import InterruptGuard
    from sparkdl.session import build_session, stop_session
    from sparkdl.tracking import open_tracking

    command = COMMANDS[name]
    cfg = config_from_args(args)
    tracking = open_tracking(cfg.tracking)  # an unreachable tracking URI fails before Spark
    spark = build_session(cfg.spark, launch=cfg.launch if command.training else None)
    try:
        # Ctrl-C or SIGTERM cancels the command's Spark jobs and ends it with exit 130.
        with InterruptGuard(spark.sparkContext, what=f"sparkdl {name}") as guard:
            try:
                with tracking.command(spark, name, cfg):  # one MLflow run (train, baselines)
                    summary, ok = command.run(spark, cfg, args)
            except Exception as exc:
                guard.check(exc)
                raise
    finally:
        stop_session(spark)
    print(summary)
    return EXIT_OK if ok else EXIT_FAILED


def job_main(name: str, argv: Sequence[str] | None, *, description: str) -> int:
    """Entry point of ``jobs/<name>.py``: parse its arguments and run the command."""
    from sparkdl.logs import configure_logging

    parser = argparse.ArgumentParser(description=description)
    add_command_arguments(name, parser)
    args = parser.parse_args(argv)
    if hasattr(args, "log_level"):
        try:
            configure_logging(args.log_level)
        except BadInputError as exc:
            parser.error(str(exc))
    return run_command(name, args)
