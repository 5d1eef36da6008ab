"""Layered, validated, frozen configuration for sparkdl jobs."""

from sparkdl.config.loader import (
    ConfigError,
    closest_key,
    load_config,
    parse_override,
    read_yaml,
    to_dict,
)
from sparkdl.config.schema import (
    AllreduceCheckConfig,
    LaunchConfig,
    LocalClusterConfig,
    SparkConfig,
    SparkdlConfig,
)

__all__ = [
    "AllreduceCheckConfig",
    "ConfigError",
    "LaunchConfig",
    "LocalClusterConfig",
    "SparkConfig",
    "SparkdlConfig",
    "closest_key",
    "load_config",
    "parse_override",
    "read_yaml",
    "to_dict",
]
