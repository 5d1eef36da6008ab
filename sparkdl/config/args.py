"""The ``--config``/``--set`` command-line arguments shared by the CLI and ``jobs/``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sparkdl.config.loader import load_config
from sparkdl.config.schema import SparkdlConfig


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` (repeatable, layered in order) and ``--set section.key=value``.

    Examples
    --------
    >>> p = argparse.ArgumentParser(); add_config_arguments(p)
    >>> p.parse_args(["--set", "launch.num_workers=3"]).overrides
    ['launch.num_workers=3']
    """
    parser.add_argument(
        "--config",
        "-c",
        dest="config_files",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML config file; repeat to layer several, later ones win (e.g. conf/local.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key, applied after the files (e.g. launch.num_workers=4)",
    )


def config_from_args(args: argparse.Namespace, *, extra: Sequence[str] = ()) -> SparkdlConfig:
    """Load the root config from parsed ``--config``/``--set`` arguments.

    Examples
    --------
    >>> ns = argparse.Namespace(config_files=[], overrides=["spark.cores=1"])
    >>> config_from_args(ns).spark.cores
    1
    """
    return load_config(SparkdlConfig, files=args.config_files, overrides=[*extra, *args.overrides])
