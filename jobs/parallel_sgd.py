"""ParallelSGD baseline: each partition runs numpy mini-batch SGD on its shard, the driver averages.

Reads the prepared dataset ``sgd.dataset`` into cached numpy blocks (``sgd.partitions`` of
them), trains logistic, softmax or linear regression with one-shot averaging or iterative
parameter mixing (``sgd.mode``) and writes ``model.npz``, ``model.json`` and ``metrics.json``
to ``sgd.output``; ``--compare`` adds MLlib and scikit-learn on the same data (compare.md).
Exit codes: 0 trained, 2 bad input or config, 3 infrastructure
failure (retry later), 1 anything else.

Run locally::

    .venv/bin/python jobs/parallel_sgd.py --config conf/local.yaml --compare

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/parallel_sgd.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``sgd`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("sgd", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
