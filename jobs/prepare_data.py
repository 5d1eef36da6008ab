"""Prepare raw CSV/JSON/Parquet as validated, featurized, split, published Parquet.

Reads ``prepare.input``, checks its columns against ``prepare.columns`` before any Spark job,
quarantines defective rows, fits the featurizer on the training split, writes each split with a
layout balanced for ``prepare.layout.workers`` ranks and publishes a new version atomically.
Exit codes: 0 published (or already published), 2 bad input or config, 3 infrastructure
failure (retry later), 1 anything else.

Run locally::

    .venv/bin/python jobs/prepare_data.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/prepare_data.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``prepare`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("prepare", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
