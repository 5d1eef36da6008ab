"""Train a Keras model on a prepared dataset with Horovod ranks in a Spark barrier stage.

Each of ``launch.num_workers`` barrier tasks becomes a Horovod rank (Gloo on CPU, NCCL on GPU
executors) reading its own row groups of ``train.dataset`` through petastorm. Rank 0 writes a
checkpoint every epoch; a failed stage is retried up to ``train.max_attempts`` times from the
last checkpoint. The model, TensorBoard logs and ``metrics.json`` land in ``train.output``.
Exit codes: 0 trained, 2 bad input or config, 1 training failed.

Run locally::

    .venv/bin/python jobs/train_horovod.py --config conf/local.yaml

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/train_horovod.py --config conf/local.yaml
"""

from __future__ import annotations

import argparse
import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print the summary, return the exit code."""
    bootstrap()
    from sparkdl.cli import result_summary
    from sparkdl.config import ConfigError
    from sparkdl.config.args import add_config_arguments, config_from_args
    from sparkdl.launch import LaunchError
    from sparkdl.session import build_session, stop_session
    from sparkdl.train.runner import run_training

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    spark = build_session(cfg.spark, launch=cfg.launch)
    try:
        result = run_training(spark, train=cfg.train, launch=cfg.launch)
    except ValueError as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    except LaunchError as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_session(spark)
    print(result_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
