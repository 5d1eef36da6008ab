"""Generate synthetic raw data on the executors, deterministic by seed, and write it.

Reads the ``generate`` section: ``kind`` (classification or blobs), ``rows``, ``seed``,
``format`` (csv or parquet) and ``output`` (any Hadoop path); blobs also get ``centers.json``.
Prints one summary line and exits 0; a config error or an existing output that may not be
overwritten exits 2 with the fix.

Run locally::

    .venv/bin/python jobs/generate_data.py --config conf/local.yaml --set generate.rows=1000000

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/generate_data.py --config conf/local.yaml \\
        --set generate.kind=blobs --set generate.format=parquet --set generate.output=data/raw/blobs
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate and write the data, print the summary, return the exit code."""
    bootstrap()
    from sparkdl.config import ConfigError
    from sparkdl.config.args import add_config_arguments, config_from_args
    from sparkdl.data.generate import write_generated
    from sparkdl.session import build_session, stop_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    spark = build_session(cfg.spark)
    try:
        result = write_generated(spark, cfg=cfg.generate)
    except ValueError as exc:  # e.g. the output exists and generate.overwrite is false
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_session(spark)
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
