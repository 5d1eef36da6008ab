"""YAML 1.1 booleans, numbers and dates in keys that expect text keep what the user wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkdl.config import ConfigError, SparkdlConfig, load_config
from sparkdl.config.data import ColumnsConfig
from sparkdl.config.loader import load_section


def _load(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> SparkdlConfig:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(SparkdlConfig, files=[path], overrides=overrides)


def test_unquoted_yes_no_label_values_stay_text(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "prepare:\n  columns: {numeric: [x0], label_values: [no, yes]}\n")
    assert cfg.prepare.columns.label_values == ("no", "yes")


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("[off, on]", ("off", "on")),
        ("[False, True]", ("False", "True")),
        ("[1.50, 2.0]", ("1.50", "2.0")),
        ("[0x1F, 007]", ("0x1F", "007")),
        ("[0, 1]", ("0", "1")),
        ("['no', 'yes']", ("no", "yes")),
    ],
)
def test_label_values_are_kept_as_written(tmp_path: Path, written: str, kept: tuple) -> None:
    cfg = _load(tmp_path, f"prepare:\n  columns: {{numeric: [x0], label_values: {written}}}\n")
    assert cfg.prepare.columns.label_values == kept


def test_column_names_and_paths_stay_text(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "prepare:\n"
        "  input: {path: 2026-01-01}\n"
        "  output: on\n"
        "  columns: {label: y, numeric: [yes, 1e3, 10], categorical: [n, off], id: no}\n",
    )
    assert cfg.prepare.input.path == "2026-01-01"
    assert cfg.prepare.output == "on"
    assert cfg.prepare.columns.numeric == ("yes", "1e3", "10")
    assert cfg.prepare.columns.categorical == ("n", "off")
    assert cfg.prepare.columns.id == "no"


def test_typed_keys_still_get_their_types(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "spark: {ui: yes, cores: 3, conf: {spark.x.flag: true, spark.y: 0.50}}\n"
        "prepare: {max_bad_fraction: 0.5, columns: {numeric: [x0], id: null}}\n",
    )
    assert cfg.spark.ui is True
    assert cfg.spark.cores == 3
    assert dict(cfg.spark.conf) == {"spark.x.flag": "true", "spark.y": "0.50"}
    assert cfg.prepare.max_bad_fraction == 0.5
    assert cfg.prepare.columns.id is None


def test_overrides_keep_text_too(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "prepare: {columns: {numeric: [x0]}}\n",
        overrides=("prepare.columns.label_values=[no, yes]", "prepare.columns.label=on"),
    )
    assert cfg.prepare.columns.label_values == ("no", "yes")
    assert cfg.prepare.columns.label == "on"


def test_boolean_without_source_text_is_refused_with_quote_hint() -> None:
    with pytest.raises(
        ConfigError, match=r"label_values\[0\].*boolean False.*write the value in quotes"
    ):
        load_section(ColumnsConfig, {"numeric": ["x0"], "label_values": [False, True]})


def test_a_bad_value_still_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"'spark.cores' in .* has value True \(bool\); allowed: int"
    ):
        _load(tmp_path, "spark: {cores: yes}\n")
