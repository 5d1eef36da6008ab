"""Raw input that is bad, or compressed, on real files through prepare and the command line."""

from __future__ import annotations

import bz2
import gzip
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.data.dataset import open_dataset
from sparkdl.data.prepare import run_prepare
from sparkdl.errors import BadInputError

pytestmark = pytest.mark.integration

COLUMNS = {
    "id": "id",
    "id_type": "long",
    "label": "label",
    "label_values": [0, 1],
    "numeric": ["x0", "x1"],
    "categorical": ["c0"],
}


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": np.arange(n)})
    df["x0"] = rng.normal(size=n).round(6)
    df["x1"] = rng.normal(size=n).round(6)
    df["c0"] = rng.choice(["a", "b", "c"], n)
    df["label"] = (df.x0 + (df.c0 == "a") > 0.3).astype(int)
    return df


def _config_file(tmp_path: Path, raw: Path, fmt: str = "csv", **columns: object) -> Path:
    data = {
        "spark": {"log_level": "ERROR"},
        "prepare": {
            "input": {"path": str(raw), "format": fmt},
            "columns": {**COLUMNS, **columns},
            "output": str(tmp_path / "out"),
        },
    }
    path = tmp_path / "prepare.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cfg(tmp_path: Path, raw: Path, fmt: str = "csv", **columns: object):
    return load_config(SparkdlConfig, files=[_config_file(tmp_path, raw, fmt, **columns)]).prepare


def _raw(tmp_path: Path, name: str, text: str | bytes) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    path = raw / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return raw


def _jobs(spark) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


def test_header_only_csv_is_bad_input_before_any_job(spark, tmp_path: Path) -> None:
    raw = _raw(tmp_path, "a.csv", "id,x0,x1,c0,label\n")
    _raw(tmp_path, "b.csv.gz", gzip.compress(b"id,x0,x1,c0,label\n\n"))
    before = _jobs(spark)
    with pytest.raises(BadInputError, match=r"hold a CSV header but no data rows .*a\.csv"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw))
    assert _jobs(spark) == before
    assert not list((tmp_path / "out").glob("versions/*"))


def test_header_only_file_next_to_files_with_rows_is_fine(spark, tmp_path: Path) -> None:
    raw = _raw(tmp_path, "a.csv", "id,x0,x1,c0,label\n")
    _frame(200).to_csv(raw / "b.csv", index=False)
    assert run_prepare(spark, cfg=_cfg(tmp_path, raw)).rows_in == 200


@pytest.mark.parametrize(
    ("header", "ignore", "repeated"),
    [
        # a repeated column the config does not use, dropped with ignore
        ("id,x0,x1,c0,extra,extra,label", ["extra"], r"'extra' more than once \(columns 5 and 6"),
        # a repeated declared column (Spark compares names ignoring case)
        ("id,x0,x1,X1,c0,label", [], r"'x1' more than once \(columns 3 and 4: 'x1', 'X1'\)"),
        # a repeated column that is not in the config at all
        ("id,x0,x1,c0,extra,extra,label", [], r"'extra' more than once"),
    ],
)
def test_repeated_column_is_bad_input_before_any_job(
    spark, tmp_path: Path, header: str, ignore: list[str], repeated: str
) -> None:
    width = len(header.split(","))
    rows = "".join(",".join([str(i), *["1"] * (width - 2), str(i % 2)]) + "\n" for i in range(9))
    raw = _raw(tmp_path, "a.csv", f"{header}\n{rows}")
    before = _jobs(spark)
    with pytest.raises(BadInputError, match=rf"a\.csv name {repeated}.*Rename or remove"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw, ignore=ignore))
    assert _jobs(spark) == before


def test_repeated_json_key_is_bad_input(spark, tmp_path: Path) -> None:
    line = '{"id": 1, "x0": 1, "x1": 2, "c0": "a", "label": 0, "note": "a", "NOTE": "b"}\n'
    raw = _raw(tmp_path, "a.json", line * 5)
    with pytest.raises(BadInputError, match=r"'note' more than once"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw, "json", ignore=["note", "NOTE"]))


def test_parquet_without_rows_is_bad_input(spark, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _frame(10).iloc[:0].to_parquet(raw / "a.parquet", index=False)
    before = _jobs(spark)
    with pytest.raises(
        BadInputError, match=r"Parquet file\(s\) at prepare.input.path=.* hold no rows"
    ):
        run_prepare(spark, cfg=_cfg(tmp_path, raw, "parquet"))
    assert _jobs(spark) == before


def test_entirely_empty_numeric_column_is_bad_input_before_the_fit(spark, tmp_path: Path) -> None:
    df = _frame(300)
    df["x1"] = ""
    raw = tmp_path / "raw"
    raw.mkdir()
    df.to_csv(raw / "a.csv", index=False)
    with pytest.raises(
        BadInputError,
        match=r"prepare.columns.numeric column\(s\) \['x1'\] have no value in any of the \d+ "
        r"training rows.*Remove them from prepare.columns.numeric",
    ):
        run_prepare(spark, cfg=_cfg(tmp_path, raw))
    assert not list((tmp_path / "out").glob("versions/*"))


def _compress(kind: str, data: bytes) -> bytes:
    return gzip.compress(data) if kind == "gz" else bz2.compress(data)


@pytest.mark.parametrize(("fmt", "suffix"), [("csv", "gz"), ("csv", "bz2"), ("json", "gz")])
def test_compressed_input_end_to_end(spark, tmp_path: Path, fmt: str, suffix: str) -> None:
    df = _frame(400)
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, part in enumerate((df.iloc[:250], df.iloc[250:])):
        if fmt == "csv":
            data = part.to_csv(index=False).encode()
        else:
            data = "".join(json.dumps(r) + "\n" for r in part.to_dict("records")).encode()
        (raw / f"part{i}.{fmt}.{suffix}").write_bytes(_compress(suffix, data))
    result = run_prepare(spark, cfg=_cfg(tmp_path, raw, fmt))
    assert (result.rows_in, result.rows_valid) == (400, 400)
    assert sum(result.split_rows.values()) == 400


def test_compressed_csv_with_wrong_columns_names_the_real_header(spark, tmp_path: Path) -> None:
    data = _frame(50).rename(columns={"x1": "x9"}).to_csv(index=False).encode()
    raw = _raw(tmp_path, "a.csv.gz", gzip.compress(data))
    with pytest.raises(BadInputError, match=r"missing \['x1'\], unexpected \['x9'\]"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw))


def test_file_named_gz_that_is_not_gzip_is_named(spark, tmp_path: Path) -> None:
    raw = _raw(tmp_path, "a.csv.gz", _frame(20).to_csv(index=False))
    with pytest.raises(BadInputError, match=r"cannot read the start of input file .*a\.csv\.gz"):
        run_prepare(spark, cfg=_cfg(tmp_path, raw))


@pytest.mark.parametrize("case", ["header_only", "empty_numeric"])
def test_prepare_command_exits_2_on_bad_raw_data(tmp_path: Path, repo: Path, case: str) -> None:
    if case == "header_only":
        raw = _raw(tmp_path, "a.csv", "id,x0,x1,c0,label\n")
        expect = "no data rows"
    else:
        df = _frame(100)
        df["x0"] = ""
        raw = _raw(tmp_path, "a.csv", df.to_csv(index=False))
        expect = r"\['x0'\] have no value"
    proc = subprocess.run(
        [str(repo / ".venv/bin/sparkdl"), "prepare", "-c", str(_config_file(tmp_path, raw))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(expect, proc.stderr), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_unquoted_yes_no_label_values_match_the_data(spark, tmp_path: Path) -> None:
    df = _frame(300)
    df["label"] = np.where(df.label == 1, "yes", "no")
    raw = tmp_path / "raw"
    raw.mkdir()
    df.to_csv(raw / "a.csv", index=False)
    # Written by hand as a user would: YAML 1.1 reads unquoted no/yes as booleans.
    config = tmp_path / "prepare.yaml"
    config.write_text(
        "prepare:\n"
        f"  input: {{path: {raw}}}\n"
        f"  output: {tmp_path / 'out'}\n"
        "  columns:\n"
        "    id: id\n"
        "    id_type: long\n"
        "    label: label\n"
        "    label_values: [no, yes]\n"
        "    numeric: [x0, x1]\n"
        "    categorical: [c0]\n"
    )
    cfg = load_config(SparkdlConfig, files=[config]).prepare
    result = run_prepare(spark, cfg=cfg)
    assert (result.rows_valid, result.rows_quarantined) == (300, 0)
    manifest = open_dataset(spark, str(tmp_path / "out")).manifest
    assert manifest.version == result.version
    assert manifest.label_values == ("no", "yes")
    counts = manifest.statistics.train_label_counts
    assert min(counts.values()) > 0
    assert sum(counts.values()) == result.split_rows["train"]
