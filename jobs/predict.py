"""Batch inference: a prepared split, or new raw data featurized like the training data.

Loads ``predict.model`` once per Python worker; with ``predict.raw`` (path, format, ...) set,
reads and featurizes new raw rows with the featurizer fitted by ``sparkdl prepare``; writes
``prediction`` and ``probability`` next to the input columns as Parquet at ``predict.output``.
Exit codes: 0 done, 2 bad input or config, 3 infrastructure failure (retry later),
1 anything else.

Run locally::

    .venv/bin/python jobs/predict.py --config conf/local.yaml \\
        --set predict.raw.path=data/raw/classification --set predict.output=runs/predict

or with spark-submit::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/predict.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``predict`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("predict", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
