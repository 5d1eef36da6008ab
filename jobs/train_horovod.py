"""Train a Keras model on a prepared dataset with Horovod ranks in a Spark barrier stage.

Each of ``launch.num_workers`` barrier tasks becomes a Horovod rank (Gloo on CPU, NCCL on GPU
executors) reading its own row groups of ``train.dataset`` through petastorm. Rank 0 writes a
checkpoint every epoch; a failed stage is retried up to ``train.max_attempts`` times from the
last checkpoint. The model, TensorBoard logs and ``metrics.json`` land in ``train.output``.
Exit codes: 0 trained, 2 bad input or config, 3 training failed on every attempt (infrastructure:
retry later), 1 anything else.

Run locally::

    .venv/bin/python jobs/train_horovod.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/train_horovod.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``train`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("train", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
