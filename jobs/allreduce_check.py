"""Run a real all-reduce on N Horovod ranks launched as a Spark barrier stage, and verify it.

Each rank all-reduces known float64 tensors over Gloo and receives a broadcast from rank 0; the
driver prints what every rank got and checks the exact sums. Exit 0 when they match.

Run locally::

    .venv/bin/python jobs/allreduce_check.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    .venv/bin/spark-submit --master 'local[2]' jobs/allreduce_check.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``allreduce-check`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("allreduce-check", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
