"""Prepare raw CSV/JSON/Parquet as validated, featurized, split, published Parquet.

Reads ``prepare.input``, checks its columns against ``prepare.columns`` before any Spark job,
quarantines defective rows, fits the featurizer on the training split, writes each split with a
layout balanced for ``prepare.layout.workers`` ranks and publishes a new version atomically.
Exit codes: 0 published (or already published), 2 bad input or config, 1 anything else.

Run locally::

    .venv/bin/python jobs/prepare_data.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/prepare_data.py --config conf/local.yaml
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the prepare job, print the summary, return the exit code."""
    bootstrap()
    from sparkdl.config import ConfigError
    from sparkdl.config.args import add_config_arguments, config_from_args
    from sparkdl.data.prepare import run_prepare
    from sparkdl.session import build_session, stop_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--force", action="store_true", help="rebuild an already published version")
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    spark = build_session(cfg.spark)
    try:
        result = run_prepare(spark, cfg=cfg.prepare, force=args.force)
    except ValueError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_session(spark)
    print(
        f"{'already published' if result.skipped else 'published'} {result.root} version "
        f"{result.version}: {result.rows_in} rows in, {result.rows_valid} valid, "
        f"{result.rows_quarantined} quarantined, splits {result.split_rows}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
