"""Layered, validated, frozen configuration for sparkdl jobs."""

from sparkdl.config.data import (
    ColumnsConfig,
    FeaturizeConfig,
    GenerateConfig,
    LayoutConfig,
    PrepareConfig,
    SourceConfig,
    SplitConfig,
)
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
from sparkdl.config.tracking import TrackingConfig

__all__ = [
    "AllreduceCheckConfig",
    "ColumnsConfig",
    "ConfigError",
    "FeaturizeConfig",
    "GenerateConfig",
    "LaunchConfig",
    "LayoutConfig",
    "LocalClusterConfig",
    "PrepareConfig",
    "SourceConfig",
    "SparkConfig",
    "SparkdlConfig",
    "SplitConfig",
    "TrackingConfig",
    "closest_key",
    "load_config",
    "parse_override",
    "read_yaml",
    "to_dict",
]
