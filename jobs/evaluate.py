"""Score a trained model on a prepared split on the executors: accuracy, log loss, AUC, confusion.

Loads ``evaluate.model`` (a ``sparkdl train`` output's ``model/``) once per Python worker,
predicts ``evaluate.split`` of the dataset it was trained on (or ``evaluate.dataset``) with
``mapInPandas``, writes the predictions as Parquet and ``metrics.json`` to ``evaluate.output``.
Exit codes: 0 done, 2 bad input or config, 3 infrastructure failure (retry later),
1 anything else.

Run locally::

    .venv/bin/python jobs/evaluate.py --config conf/local.yaml --set evaluate.model=runs/train/model

or with spark-submit::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/evaluate.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``evaluate`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("evaluate", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
