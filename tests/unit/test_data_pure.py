"""Pure helpers of the data jobs: layout planning, encodings, header parsing, column checks."""

from __future__ import annotations

import pytest

from sparkdl.config import ColumnsConfig, FeaturizeConfig, LayoutConfig, SourceConfig
from sparkdl.data.featurize import choose_encodings
from sparkdl.data.fs import FileInfo
from sparkdl.data.layout import plan_layout, rank_shares
from sparkdl.data.publish import config_hash, version_key
from sparkdl.data.sources import check_columns, fingerprint_files, parse_header


@pytest.mark.parametrize(
    ("rows", "row_bytes", "workers", "target_mb", "files"),
    [
        (1_000_000, 48, 2, 16, 4),  # 48 MB over 2 workers at 16 MB: 2 row groups each
        (1_000_000, 48, 3, 64, 3),  # fits in one row group per worker
        (100, 48, 4, 32, 4),
        (3, 48, 2, 32, 2),  # never more files than rows
        (1, 48, 2, 32, 1),
        (10_000_000, 400, 2, 32, 120),
    ],
)
def test_plan_layout(rows: int, row_bytes: int, workers: int, target_mb: float, files: int) -> None:
    plan = plan_layout(
        rows=rows,
        row_bytes=row_bytes,
        cfg=LayoutConfig(workers=workers, target_row_group_mb=target_mb),
    )
    assert plan.files == files
    assert plan.block_bytes >= 1 << 30
    assert plan.rows_per_file * plan.files >= rows


def test_min_row_groups_per_worker() -> None:
    plan = plan_layout(
        rows=10_000, row_bytes=8, cfg=LayoutConfig(workers=2, min_row_groups_per_worker=5)
    )
    assert plan.files == 10


def test_rank_shares_round_robin() -> None:
    assert rank_shares([5, 6, 7, 8, 9], 2) == [21, 14]
    assert rank_shares([], 3) == [0, 0, 0]


def test_choose_encodings() -> None:
    distinct = {"small": 3, "big": 500}
    assert choose_encodings(distinct, cfg=FeaturizeConfig()) == {"small": "onehot", "big": "hash"}
    assert choose_encodings(distinct, cfg=FeaturizeConfig(categorical="index")) == {
        "small": "index",
        "big": "index",
    }
    assert choose_encodings(distinct, cfg=FeaturizeConfig(max_onehot=1000))["big"] == "onehot"


@pytest.mark.parametrize(
    ("line", "source", "expected"),
    [
        ("a,b,c", SourceConfig(), ["a", "b", "c"]),
        ('"x, y";z', SourceConfig(delimiter=";"), ["x, y", "z"]),
        ("a\tb", SourceConfig(delimiter="\\t"), ["a", "b"]),
        ("'q|r'|s", SourceConfig(delimiter="|", quote="'"), ["q|r", "s"]),
        (" a , b ", SourceConfig(), ["a", "b"]),
    ],
)
def test_parse_header(line: str, source: SourceConfig, expected: list[str]) -> None:
    assert parse_header(line, source) == expected


def test_check_columns_lists_expected_and_actual() -> None:
    cols = ColumnsConfig(numeric=("x0", "x1"), categorical=("c",), id="id")
    check_columns(["id", "x0", "x1", "c", "label"], columns=cols, where="f")  # order is free
    with pytest.raises(ValueError, match=r"missing \['x1'\]") as info:
        check_columns(["id", "x0", "c", "label"], columns=cols, where="file:/d/a.csv")
    assert "file:/d/a.csv" in str(info.value)
    assert "actual: ['id', 'x0', 'c', 'label']" in str(info.value)
    with pytest.raises(ValueError, match=r"unexpected \['zzz'\]"):
        check_columns(["id", "x0", "x1", "c", "label", "zzz"], columns=cols, where="f")
    ignoring = ColumnsConfig(numeric=("x0", "x1"), categorical=("c",), id="id", ignore=("zzz",))
    check_columns(["id", "x0", "x1", "c", "label", "zzz"], columns=ignoring, where="f")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "declares no features"),
        ({"numeric": ("x", "x")}, "more than once"),
        ({"numeric": ("label",)}, "more than once"),
        ({"numeric": ("x",), "required": ("y",)}, "not declared columns"),
        ({"numeric": ("x",), "label_values": ("1",)}, "at least two distinct"),
    ],
)
def test_columns_config_rules(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ColumnsConfig(**kwargs)


def test_source_config_rules() -> None:
    with pytest.raises(ValueError, match="one character"):
        SourceConfig(delimiter="::")
    with pytest.raises(ValueError, match="header"):
        SourceConfig(header=False)


def test_fingerprint_and_version_key_change_with_input_and_config() -> None:
    a = (FileInfo("file:/a.csv", 10, 1),)
    b = (FileInfo("file:/a.csv", 11, 1),)
    assert fingerprint_files(a) == fingerprint_files(a) != fingerprint_files(b)
    k1 = version_key(input_fingerprint=fingerprint_files(a), config_digest=config_hash({"x": 1}))
    k2 = version_key(input_fingerprint=fingerprint_files(a), config_digest=config_hash({"x": 2}))
    k3 = version_key(input_fingerprint=fingerprint_files(b), config_digest=config_hash({"x": 1}))
    assert len({k1, k2, k3}) == 3
