"""Run a real all-reduce on N Horovod ranks launched as a Spark barrier stage, and verify it.

Each rank all-reduces known float64 tensors over Gloo and receives a broadcast from rank 0; the
driver prints what every rank got and checks the exact sums. Exit 0 when they match.

Run locally::

    .venv/bin/python jobs/allreduce_check.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    .venv/bin/spark-submit --master 'local[2]' jobs/allreduce_check.py --config conf/local.yaml
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the check, print the report, return the exit code."""
    bootstrap()
    from sparkdl.config import ConfigError
    from sparkdl.config.args import add_config_arguments, config_from_args
    from sparkdl.launch.smoke import run_allreduce_check
    from sparkdl.session import build_session, stop_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    spark = build_session(cfg.spark, launch=cfg.launch)
    try:
        report = run_allreduce_check(spark, launch=cfg.launch, check=cfg.allreduce_check)
    finally:
        stop_session(spark)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
