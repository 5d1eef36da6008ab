"""The ``sparkdl`` command line. Each subcommand listed in ``--help`` is a working one."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import yaml

import sparkdl
from sparkdl.commands import COMMANDS, add_command_arguments, run_command
from sparkdl.config import to_dict
from sparkdl.config.args import add_config_arguments, add_log_level_argument, config_from_args
from sparkdl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInputError
from sparkdl.exits import guarded
from sparkdl.logs import configure_logging

if TYPE_CHECKING:
    from sparkdl.launch.smoke import AllreduceReport

logger = logging.getLogger("sparkdl.cli")

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sparkdl.doctor import checks_as_dicts, format_checks, run_checks

    checks = run_checks(spark=not args.no_spark)
    failed = any(c.status == "fail" for c in checks)
    report = None
    if args.launch and not failed:
        report = _allreduce(args)
        failed = not report.ok
    if args.json:
        out: dict[str, object] = {"healthy": not failed, "checks": checks_as_dicts(checks)}
        if report is not None:
            out["allreduce"] = {"ok": report.ok, "ranks": list(report.ranks)}
        print(json.dumps(out, indent=2))
    else:
        print(format_checks(checks))
        if report is not None:
            print(report.format())
    return EXIT_FAILED if failed else EXIT_OK


def _allreduce(args: argparse.Namespace) -> AllreduceReport:
    from sparkdl.launch.smoke import run_allreduce_check
    from sparkdl.session import build_session, stop_session

    cfg = config_from_args(args)
    spark = build_session(cfg.spark, launch=cfg.launch)
    try:
        return run_allreduce_check(spark, launch=cfg.launch, check=cfg.allreduce_check)
    finally:
        stop_session(spark)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "prepare":
        from sparkdl.bench.prepare_bench import main as bench_main
    elif args.bench == "baselines":
        from sparkdl.bench.baselines_bench import main as bench_main
    elif args.bench == "comms":
        from sparkdl.bench.comms_bench import main as bench_main
    elif args.bench == "plan":
        from sparkdl.bench.plan_bench import main as bench_main
    else:
        from sparkdl.bench.train_bench import main as bench_main
    print(bench_main(args))
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from sparkdl.plan.command import run as run_plan

    print(run_plan(args))
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    if args.describe:
        from sparkdl.config.describe import describe

        print(describe(args.describe))
        return EXIT_OK
    cfg = config_from_args(args)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand.

    Examples
    --------
    >>> build_parser().parse_args(["doctor", "--json"]).json
    True
    """
    parser = argparse.ArgumentParser(
        prog="sparkdl",
        description="Spark-integrated deep learning: Spark prepares data, Horovod ranks train.",
    )
    parser.add_argument("--version", action="version", version=f"sparkdl {sparkdl.__version__}")
    add_log_level_argument(parser, default="INFO")  # also after the subcommand
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    doctor = sub.add_parser(
        "doctor",
        help="check Python, Java, Spark, TensorFlow, Horovod and friends; exit 1 on problems",
        description="Check that this machine can run sparkdl; each problem comes with its fix.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument(
        "--no-spark", action="store_true", help="skip starting a local Spark JVM (saves ~5 s)"
    )
    doctor.add_argument(
        "--launch",
        action="store_true",
        help="also run a real all-reduce on launch.num_workers Horovod ranks in a barrier stage",
    )
    add_config_arguments(doctor)
    doctor.set_defaults(func=_cmd_doctor)

    # allreduce-check runs as `sparkdl doctor --launch` and jobs/allreduce_check.py
    for name in [n for n in COMMANDS if n != "allreduce-check"]:
        command = sub.add_parser(name, help=COMMANDS[name].help, description=COMMANDS[name].help)
        add_command_arguments(name, command)
        command.set_defaults(func=partial(run_command, name))

    bench = sub.add_parser(
        "bench",
        help="benchmarks that print measured ratios (prepare, train, baselines, comms)",
        description="Run a benchmark; each prints its measurements and ratios side by side.",
    )
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    from sparkdl.bench.prepare_bench import add_arguments as add_prepare_bench

    add_prepare_bench(
        bench_sub.add_parser(
            "prepare", help="prepare throughput against pyarrow, driver memory at 1x and 10x"
        )
    )
    from sparkdl.bench.train_bench import add_arguments as add_train_bench

    add_train_bench(
        bench_sub.add_parser(
            "train",
            help="Horovod throughput vs Keras, scaling, Parquet vs memory, launch, all-reduce",
        )
    )
    from sparkdl.bench.baselines_bench import add_arguments as add_baselines_bench

    add_baselines_bench(
        bench_sub.add_parser(
            "baselines",
            help="ParallelSGD time to MLlib's accuracy, k-means per iteration vs MLlib/sklearn",
        )
    )
    from sparkdl.bench.comms_bench import add_arguments as add_comms_bench

    add_comms_bench(
        bench_sub.add_parser(
            "comms",
            help="training modes (sync, fp16, accumulate, local SGD, top-k, PowerSGD) at "
            "unthrottled, 10 and 1 Gbit/s: epoch time, bytes, time to sync's accuracy",
        )
    )
    from sparkdl.bench.plan_bench import add_arguments as add_plan_bench

    add_plan_bench(
        bench_sub.add_parser(
            "plan",
            help="sparkdl plan's predictions beside measured trainings (1 and 2 ranks, mlp and "
            "cnn, sync, accumulate, local SGD, unthrottled and 1 Gbit/s): errors against targets",
        )
    )
    for each in bench_sub.choices.values():
        add_log_level_argument(each)
    bench.set_defaults(func=_cmd_bench)

    from sparkdl.plan.command import add_arguments as add_plan_arguments

    plan = sub.add_parser(
        "plan",
        help="predict step, epoch and total time of training for worker counts and modes, "
        "from a calibration of this machine (cached), and pick the fastest and cheapest",
        description="Predict how a training job scales before it runs (sparkdl/plan/model.py "
        "states the model).",
    )
    add_config_arguments(plan)
    add_plan_arguments(plan)
    plan.set_defaults(func=_cmd_plan)

    config = sub.add_parser(
        "config",
        help="validate config files and overrides and print the resolved config",
        description="Resolve defaults < --config files < --set overrides and print the result.",
    )
    add_config_arguments(config)
    config.add_argument(
        "--describe",
        metavar="SECTION",
        help="print every key of SECTION (train, train.model, prepare.columns, ...) with its "
        "type, default, bounds and documentation, instead of the resolved config",
    )
    config.set_defaults(func=_cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sparkdl`` command line and return its exit code.

    Exit codes: 0 success, 1 a check or job failed or an unexpected error, 2 bad input or
    config (or a cluster that must change first), 3 infrastructure that may pass on retry,
    130 interrupted; see :mod:`sparkdl.errors`.

    Examples
    --------
    >>> main(["config", "--set", "launch.num_workers=2"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
    except BadInputError as exc:
        parser.error(str(exc))
    func: Callable[[argparse.Namespace], int] = args.func
    if isinstance(func, partial) and func.func is run_command:
        return func(args)  # run_command guards itself
    return guarded(args.command, lambda: func(args))


if __name__ == "__main__":
    sys.exit(main())
