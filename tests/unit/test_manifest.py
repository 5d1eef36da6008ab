"""The dataset manifest contract: round trip, the format check, missing, mistyped and unknown
fields, and a manifest written by sparkdl before the record existed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from sparkdl.contract import check_format, from_plain, to_plain
from sparkdl.data.dataset import PreparedDataset
from sparkdl.data.manifest import FORMAT, DatasetManifest, SplitInfo
from sparkdl.errors import BadInputError

# Written by `sparkdl prepare` at commit e702d1f (before DatasetManifest): 400 generated rows
# with categorical columns, plus one malformed row, on local[1].
V1 = Path(__file__).parent / "fixtures" / "manifest-sparkdl-prepared-1.json"


def _v1() -> dict[str, Any]:
    return json.loads(V1.read_text())


def _parse(data: dict[str, Any]) -> DatasetManifest:
    return DatasetManifest.from_json(json.dumps(data), source="v/manifest.json")


def test_a_manifest_written_before_the_record_reads_and_writes_back_unchanged() -> None:
    manifest = DatasetManifest.from_json(V1.read_text(), source=str(V1))
    assert manifest.format == FORMAT == "sparkdl-prepared/1"
    assert manifest.rows.input == manifest.rows.valid + manifest.rows.quarantined == 401
    assert manifest.quarantine.by_reason == {"malformed_row:too_few_fields": 1}
    assert manifest.features.encodings == {"c0": "onehot", "c1": "onehot"}
    assert len(manifest.features.names) == manifest.features.dim
    assert manifest.label_values == ("0", "1")
    train = manifest.splits["train"]
    assert sum(f.rows for f in train.files) == train.rows == sum(train.rank_rows)
    assert len(train.group_rows) == train.row_groups
    assert manifest.statistics.numeric["x0"].count == manifest.statistics.rows
    assert manifest.columns.categorical == ("c0", "c1")
    # every field is kept: the record writes the same JSON back
    assert json.loads(manifest.to_json()) == _v1()


def test_round_trip_is_identity() -> None:
    manifest = _parse(_v1())
    assert DatasetManifest.from_json(manifest.to_json(), source="x") == manifest
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.version = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("found", "why"),
    [
        ("sparkdl-prepared/2", "written by a newer sparkdl"),
        ("sparkdl-prepared/0", "written by an older sparkdl"),
        ("something-else/1", "an unknown format"),
        (None, "an unknown format"),
    ],
)
def test_a_format_this_sparkdl_does_not_read_is_refused(found: Any, why: str) -> None:
    data = {**_v1(), "format": found}
    if found is None:
        del data["format"]
    with pytest.raises(BadInputError) as err:
        _parse(data)
    message = str(err.value)
    assert "v/manifest.json" in message and repr(found) in message and why in message
    assert "'sparkdl-prepared/1'" in message and "sparkdl prepare --force" in message


def test_a_missing_field_is_refused_with_its_path() -> None:
    data = _v1()
    del data["splits"]["train"]["digest"]
    with pytest.raises(
        BadInputError, match=r"v/manifest.json: field 'splits.train.digest' is missing"
    ):
        _parse(data)


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        (("rows", "valid"), "400", "field 'rows.valid' is '400' (str), expected int"),
        (("rows", "valid"), True, "field 'rows.valid' is True (bool), expected int"),
        (("features", "names"), "x0", "field 'features.names' is 'x0' (str), expected a list"),
        (
            ("splits", "train", "files"),
            {},
            "field 'splits.train.files' is {} (dict), expected a list",
        ),
        (("label_values",), [0, 1], "field 'label_values[0]' is 0 (int), expected str"),
        (("statistics", "numeric", "x0", "mean"), "big", "'statistics.numeric.x0.mean'"),
    ],
)
def test_a_mistyped_field_is_refused_with_its_path_and_value(
    path: tuple[str, ...], value: Any, shown: str
) -> None:
    data = _v1()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BadInputError, match="prepare --force") as err:
        _parse(data)
    assert shown in str(err.value)


def test_unknown_fields_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    data = _v1()
    data["lineage"] = {"parent": "x"}
    data["splits"]["train"]["checksum"] = "abc"
    caplog.set_level("INFO", logger="sparkdl.contract")
    manifest = _parse(data)
    assert manifest == _parse(_v1())
    assert "lineage" in caplog.text and "splits.train.checksum" in caplog.text


def test_fields_with_defaults_may_be_absent() -> None:
    data = _v1()
    del data["timings_s"], data["features"]["encodings"]
    manifest = _parse(data)
    assert manifest.timings_s == {} and manifest.features.encodings == {}


def test_null_statistics_and_labels_are_read_as_none() -> None:
    data = _v1()
    data["label_values"] = None
    data["statistics"]["numeric"]["x0"]["std"] = None
    manifest = _parse(data)
    assert manifest.label_values is None and manifest.statistics.numeric["x0"].std is None


def test_not_json_is_refused_naming_the_file() -> None:
    with pytest.raises(BadInputError, match=r"v/manifest.json is not JSON"):
        DatasetManifest.from_json("{", source="v/manifest.json")
    with pytest.raises(BadInputError, match=r"v/manifest.json is not a JSON object"):
        DatasetManifest.from_json("[]", source="v/manifest.json")


def test_prepared_dataset_reads_splits_through_the_record() -> None:
    ds = PreparedDataset(root="/d", path="/d/versions/v", manifest=_parse(_v1()))
    assert ds.split_path("test") == "/d/versions/v/test"
    assert ds.rows("validation") == ds.manifest.splits["validation"].rows
    assert sum(ds.rank_rows("train", 2)) == ds.rows("train")
    assert ds.num_classes == 2 and ds.feature_dim == len(ds.feature_names)
    with pytest.raises(BadInputError, match="split 'holdout' is not in /d/versions/v"):
        ds.rows("holdout")


def test_contract_helpers_on_their_own() -> None:
    split = from_plain(SplitInfo, _v1()["splits"]["test"], source="s", fix="f")
    assert to_plain(split) == _v1()["splits"]["test"]
    assert check_format("a/1", supported=("a/1", "a/2"), source="s", fix="f") == "a/1"
