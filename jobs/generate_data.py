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

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``generate`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("generate", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
