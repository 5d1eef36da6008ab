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
from sparkdl.steps import STEPS, StepOptions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INFRA", "EXIT_OK", "run_command"]

Outcome = tuple[str, bool]


def _step_command(
    name: str,
) -> Callable[[SparkSession, SparkdlConfig, argparse.Namespace], Outcome]:
    """The CLI's call of registered step ``name``: its flags become :class:`StepOptions`."""

    def run(spark: SparkSession, cfg: SparkdlConfig, args: argparse.Namespace) -> Outcome:
        # --compare turns the comparison on; without it the step's config decides
        options = StepOptions(
            force=getattr(args, "force", False),
            compare=True if getattr(args, "compare", False) else None,
        )
        result = STEPS[name].run(spark, cfg, options)
        return result.summary, result.ok

    return run


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


@dataclass(frozen=True)
class Command:
    """One Spark-backed command."""

    run: Callable[[SparkSession, SparkdlConfig, argparse.Namespace], Outcome]
    training: bool
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


# every registered step but the pipeline's report is a command of its own, plus the pipeline
COMMANDS: dict[str, Command] = {
    **{
        name: Command(_step_command(name), step.training, step.help, step.add_arguments)
        for name, step in STEPS.items()
        if name != "report"
    },
    "pipeline": Command(
        _pipeline,
        True,
        "generate -> prepare -> train -> baselines -> evaluate -> report, resumable by run id",
        _add_run,
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
