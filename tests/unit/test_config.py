"""Config loading: layering, validation, suggestions for misspelt keys, immutability."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sparkdl.config import (
    ConfigError,
    SparkdlConfig,
    closest_key,
    load_config,
    parse_override,
    to_dict,
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_files() -> None:
    cfg = load_config(SparkdlConfig)
    assert cfg.spark.profile == "local"
    assert cfg.spark.cores == 2
    assert cfg.launch.num_workers == 2
    assert cfg.launch.threads_per_worker is None


def test_layers_defaults_file_file_overrides(tmp_path: Path) -> None:
    base = _write(
        tmp_path, "base.yaml", "spark: {cores: 4, app_name: base}\nlaunch: {num_workers: 3}\n"
    )
    top = _write(tmp_path, "top.yaml", "spark: {app_name: top}\n")
    cfg = load_config(SparkdlConfig, files=[base, top], overrides=["launch.num_workers=1"])
    assert cfg.spark.cores == 4  # from base, untouched by top
    assert cfg.spark.app_name == "top"  # top wins over base
    assert cfg.launch.num_workers == 1  # override wins over both
    assert cfg.launch.start_timeout_s == 120.0  # default survives


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("launch.num_wokers=3", "launch.num_workers"),
        ("lanch.num_workers=3", "launch"),
        ("spark.cors=3", "spark.cores"),
        ("spark.local_cluster.executor=3", "spark.local_cluster.executors"),
        ("allreduce_check.round=2", "allreduce_check.rounds"),
    ],
)
def test_unknown_key_names_closest_valid_key(override: str, suggestion: str) -> None:
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'"):
        load_config(SparkdlConfig, overrides=[override])


def test_unknown_key_in_file_names_the_file(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", "launch:\n  start_timeout: 30\n")
    with pytest.raises(ConfigError) as info:
        load_config(SparkdlConfig, files=[bad])
    message = str(info.value)
    assert "launch.start_timeout" in message
    assert str(bad) in message
    assert "did you mean 'launch.start_timeout_s'" in message


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"Valid keys here: .*num_workers") as info:
        load_config(SparkdlConfig, overrides=["launch.zzzzzz=1"])
    assert "did you mean" not in str(info.value)
    assert str(info.value).count("Valid keys here") == 1


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("launch.num_workers=0", "allowed: >= 1"),
        ("launch.num_workers=two", "allowed: int"),
        ("launch.num_workers=true", "allowed: int"),
        ("spark.profile=locl", "Did you mean 'local'"),
        ("spark.ui=maybe", "allowed: bool"),
        ("spark.log_level=LOUD", "one of 'DEBUG'"),
        ("launch.threads_per_worker=0", "allowed: >= 1"),
        ("spark.local_cluster.memory_mb=100", "allowed: >= 512"),
        ("spark.conf=[1, 2]", "allowed: a mapping"),
        ("spark=3", "must be a section"),
    ],
)
def test_bad_values_name_key_value_and_allowed(override: str, fragment: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=fragment) as info:
        load_config(SparkdlConfig, overrides=[override])
    assert f"'{key}'" in str(info.value)


def test_cross_field_rules_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="spark://host:port"):
        load_config(SparkdlConfig, overrides=["spark.profile=standalone"])
    with pytest.raises(ConfigError, match="takes local, local\\[N\\]"):
        load_config(SparkdlConfig, overrides=["spark.master=yarn"])
    with pytest.raises(ConfigError, match=r"must start with 'spark\.'"):
        load_config(SparkdlConfig, overrides=["spark.conf={executor.memory: 2g}"])
    cfg = load_config(
        SparkdlConfig,
        overrides=["spark.profile=standalone", "spark.master=spark://127.0.0.1:7077"],
    )
    assert cfg.spark.master == "spark://127.0.0.1:7077"


def test_yaml_scalars_become_spark_conf_strings() -> None:
    cfg = load_config(
        SparkdlConfig,
        overrides=["spark.conf={spark.sql.shuffle.partitions: 8, spark.x.flag: true}"],
    )
    assert dict(cfg.spark.conf) == {"spark.sql.shuffle.partitions": "8", "spark.x.flag": "true"}


def test_config_is_immutable() -> None:
    cfg = load_config(SparkdlConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.launch.num_workers = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.spark.conf["spark.x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "does not exist"), ("a: [1,\n", "not valid YAML"), ("- 1\n- 2\n", "must hold a mapping")],
)
def test_bad_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "missing.yaml" if not text else _write(tmp_path, "x.yaml", text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(SparkdlConfig, files=[path])


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(SparkdlConfig, files=[_write(tmp_path, "e.yaml", "")]) == SparkdlConfig()


@pytest.mark.parametrize("text", ["launch.num_workers", "=3", "launch..x=1", ".a=1"])
def test_malformed_overrides(text: str) -> None:
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override(text)


def test_parse_override_types() -> None:
    assert parse_override("a.b=4") == (["a", "b"], 4)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=[x, y]") == (["a", "b"], ["x", "y"])
    assert parse_override("a.b=") == (["a", "b"], "")


def test_closest_key() -> None:
    assert closest_key("num_wokers", ["num_workers", "rounds"]) == "num_workers"
    assert closest_key("qqq", ["num_workers", "rounds"]) is None


def test_round_trip_through_dict() -> None:
    cfg = load_config(SparkdlConfig, overrides=["spark.conf={spark.a: b}", "launch.num_workers=3"])
    data = to_dict(cfg)
    assert data["spark"]["conf"] == {"spark.a": "b"}
    rebuilt = load_config(
        SparkdlConfig,
        overrides=[
            f"launch.num_workers={data['launch']['num_workers']}",
            "spark.conf={spark.a: b}",
        ],
    )
    assert rebuilt == cfg


def test_every_shipped_profile_loads(repo: Path) -> None:
    files = sorted((repo / "conf").glob("*.yaml"))
    assert files, "conf/ holds no YAML profiles"
    for path in files:
        cfg = load_config(SparkdlConfig, files=[path])
        assert cfg.launch.num_workers >= 1, path
