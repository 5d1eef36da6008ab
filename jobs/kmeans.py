"""Distributed k-means baseline: k-means|| initialisation, Lloyd iterations with tree reduction.

Reads split ``kmeans.split`` of the prepared dataset ``kmeans.dataset`` into cached numpy
blocks, clusters it into ``kmeans.k`` clusters and writes ``model.npz`` (centres),
``model.json`` and ``metrics.json`` (cost per iteration, ARI and NMI against the labels) to
``kmeans.output``; ``--compare`` adds MLlib and scikit-learn on the same data (compare.md).
Exit codes: 0 done, 2 bad input or config, 3 infrastructure
failure (retry later), 1 anything else.

Run locally::

    .venv/bin/python jobs/kmeans.py --config conf/local.yaml --config conf/blobs.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/kmeans.py -c conf/local.yaml -c conf/blobs.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``kmeans`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("kmeans", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
