"""The ``--config``/``--set`` command-line arguments shared by the CLI and ``jobs/``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sparkdl.config.loader import load_config
from sparkdl.config.schema import SparkdlConfig


def add_log_level_argument(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """Add ``--log-level``; without ``default`` it is set only when given (a subcommand's copy
    then leaves the top-level parser's value alone).

    Examples
    --------
    >>> p = argparse.ArgumentParser(); add_log_level_argument(p)
    >>> p.parse_args(["--log-level", "DEBUG"]).log_level, hasattr(p.parse_args([]), "log_level")
    ('DEBUG', False)
    """
    parser.add_argument(
        "--log-level",
        default=argparse.SUPPRESS if default is None else default,
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` (repeatable, layered in order), ``--set section.key=value`` and
    ``--log-level``.

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
    add_log_level_argument(parser)


def config_from_args(args: argparse.Namespace, *, extra: Sequence[str] = ()) -> SparkdlConfig:
    """Load the root config from parsed ``--config``/``--set`` arguments.

    Examples
    --------
    >>> ns = argparse.Namespace(config_files=[], overrides=["spark.cores=1"])
    >>> config_from_args(ns).spark.cores
    1
    """
    return load_config(SparkdlConfig, files=args.config_files, overrides=[*extra, *args.overrides])
