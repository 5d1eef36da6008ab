"""prepare.columns.infer on real files: scikit-learn's breast-cancer data as CSV with its own
column names (spaces in them) and string labels, prepared with nothing but the label named."""

from __future__ import annotations

import argparse
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

LABEL = "diagnosis"


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame[LABEL] = frame.pop("target").map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="module")
def cancer_csv(cancer: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cancer") / "breast_cancer.csv"
    cancer.to_csv(path, index=False)
    return path


def _config(tmp_path: Path, columns: dict, *, path: Path, out: Path, **prepare: object):
    text = {"prepare": {"input": {"path": str(path)}, "columns": columns, "output": str(out)}}
    text["prepare"].update(prepare)
    file = tmp_path / f"prepare-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    file.write_text(yaml.safe_dump(text))
    return load_config(SparkdlConfig, files=[file])


@pytest.fixture(scope="module")
def prepared(spark, cancer_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """`sparkdl prepare`'s summary and output for the CSV with only the label named."""
    from sparkdl.commands import COMMANDS

    tmp = tmp_path_factory.mktemp("inferred")
    out = tmp / "prepared"
    cfg = _config(tmp, {"infer": True, "label": LABEL}, path=cancer_csv, out=out)
    summary, ok = COMMANDS["prepare"].run(spark, cfg, argparse.Namespace(force=False))
    assert ok
    return summary, out


def test_only_the_label_named_gives_30_numeric_features_and_the_datas_classes(
    spark, cancer: pd.DataFrame, cancer_csv: Path, prepared: tuple[str, Path], tmp_path: Path
) -> None:
    summary, out = prepared
    assert "columns inferred from the data" in summary

    manifest = open_dataset(spark, str(out)).manifest
    features = [c for c in cancer.columns if c != LABEL]
    assert len(features) == 30 and "mean radius" in features
    assert manifest.columns.numeric == tuple(features)  # the CSV's own names, in its order
    assert manifest.columns.categorical == () and manifest.columns.infer is False
    assert manifest.columns.label_values == manifest.label_values == ("benign", "malignant")
    assert manifest.features.names == tuple(features) and manifest.features.dim == 30
    assert manifest.rows.valid == len(cancer) == 569
    inferred = manifest.inferred
    assert inferred is not None
    assert inferred.label_counts == cancer[LABEL].value_counts().to_dict()
    assert inferred.evidence == f"types from the first 569 rows of {cancer_csv}"
    assert {c.role for n, c in inferred.columns.items() if n != LABEL} == {"numeric"}
    assert inferred.columns[LABEL].role == "label"
    assert inferred.options["max_label_values"] == 100

    # The printed YAML is the stored one, and pasting it declares the same columns: the same
    # declaration is the same dataset version, so prepare has nothing to do.
    printed = summary.split("paste this into the config to declare them:\n", 1)[1]
    assert printed + "\n" == inferred.declaration
    pasted = yaml.safe_load(printed)["prepare"]["columns"]
    assert pasted["numeric"] == features
    again = _config(tmp_path, pasted, path=cancer_csv, out=out)
    assert again.prepare.columns == manifest.columns
    rerun = run_prepare(spark, cfg=again.prepare)
    assert rerun.skipped and rerun.version == manifest.version
    assert rerun.declaration == inferred.declaration  # the version's record keeps it


def test_the_inferred_dataset_trains_like_a_declared_one(spark, prepared, tmp_path: Path) -> None:
    from sparkdl.train.runner import run_training

    cfg = load_config(
        SparkdlConfig,
        overrides=[
            f"train.dataset={prepared[1]}",
            f"train.output={tmp_path / 'model'}",
            "train.epochs=3",
            "train.batch_size=32",
            "train.learning_rate=0.003",
            "train.model.hidden=16",
            "launch.num_workers=2",
            "launch.start_timeout_s=60",
        ],
    )
    result = run_training(spark, train=cfg.train, launch=cfg.launch)
    assert result.workers == 2 and len(set(result.weight_digests)) == 1
    assert result.test["accuracy"] >= 0.9, result.test  # 0.973 measured (75 test rows)


def _write(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "raw.csv"
    frame.to_csv(path, index=False)
    return path


def _with_empty_labels(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.copy()
    bad.loc[[3, 70, 300], LABEL] = None
    return bad


@pytest.mark.parametrize(
    ("change", "columns", "match"),
    [
        (
            _with_empty_labels,
            {"label": LABEL},
            r"label column 'diagnosis' is empty or null in 3 row\(s\).*IS NOT NULL",
        ),
        (
            None,
            {"label": "mean radius"},
            r"label column 'mean radius' of .* has more than 100 distinct values "
            r"\(prepare.inference.max_label_values=100\).*task: regression",
        ),
        (
            None,
            {"label": "Diagnosis"},
            r"prepare.columns.label names 'Diagnosis', which is not a column of .*raw.csv "
            r"\(did you mean 'diagnosis'\?\)",
        ),
        (
            lambda f: f.rename(columns={"mean area": "mean.area"}),
            {"label": LABEL},
            r"input columns \['mean.area'\] .* hold a dot or a backtick.*prepare.columns.ignore",
        ),
    ],
    ids=["label-nulls", "too-many-label-values", "label-missing", "dotted-name"],
)
def test_bad_input_is_refused_before_any_work_naming_the_column_and_the_fix(
    spark, cancer: pd.DataFrame, tmp_path: Path, change, columns, match
) -> None:
    path = _write(change(cancer) if change else cancer, tmp_path)
    out = tmp_path / "prepared"
    cfg = _config(tmp_path, {"infer": True, **columns}, path=path, out=out)
    with pytest.raises(BadInputError, match=match):
        run_prepare(spark, cfg=cfg.prepare)
    assert not (out / "versions").exists() and not list(out.glob("_staging/*"))


def test_a_dataframe_without_the_named_label_is_refused(spark, cancer, tmp_path: Path) -> None:
    frame = spark.createDataFrame(cancer.drop(columns=[LABEL]))
    cfg = _config(tmp_path, {"infer": True, "label": LABEL}, path=tmp_path, out=tmp_path / "o")
    with pytest.raises(BadInputError, match=r"'diagnosis', which is not a column of the DataFrame"):
        run_prepare(spark, cfg=cfg.prepare, frame=frame)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """Typed columns of every kind inference tells apart, 400 rows."""
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame(
        {
            "row id": np.arange(n),
            "age in years": rng.integers(18, 90, n),
            "weight kg": rng.normal(70, 10, n).round(2),
            "city": rng.choice(["Lyon", "Oslo", "Porto", "Turku"], n),
            "member": rng.choice([True, False], n),
            "email": [f"user{i}@example.org" for i in range(n)],
            "seen": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "stars": rng.integers(1, 4, n),
        }
    )
    frame["churned"] = np.where(frame["weight kg"] > 72, "yes", "no")
    return frame


@pytest.mark.parametrize("source", ["parquet", "json", "dataframe"])
def test_types_and_cardinality_choose_the_roles(
    spark, mixed: pd.DataFrame, tmp_path: Path, source: str
) -> None:
    df = spark.createDataFrame(mixed)
    path = tmp_path / "raw"
    frame = None
    if source == "dataframe":
        frame = df
    else:
        getattr(df.write, source)(str(path))
    columns = {"infer": True, "label": "churned", "id": "row id", "id_type": "long"}
    inference = {"max_categories": 50, "integer_categories": 3}
    cfg = _config(
        tmp_path,
        columns,
        path=path,
        out=tmp_path / "out",
        input={"path": str(path), "format": "parquet" if source == "dataframe" else source},
        inference=inference,
    ).prepare
    result = run_prepare(spark, cfg=cfg, frame=frame)
    manifest = open_dataset(spark, result.root).manifest
    cols = manifest.columns
    assert cols.numeric == ("age in years", "weight kg")
    assert cols.categorical == ("city", "member", "stars")  # stars: 3 integers
    # an id-like text column and a timestamp (text in JSON, with one value per row) are left out
    assert cols.ignore == ("email", "seen")
    assert (cols.id, cols.id_type, cols.label_values) == ("row id", "long", ("no", "yes"))
    roles = manifest.inferred.columns
    assert roles["email"].distinct_approx > 50 and "max_categories=50" in roles["email"].reason
    assert roles["seen"].kind == ("string" if source == "json" else "timestamp")
    assert manifest.rows.valid == len(mixed) == sum(manifest.inferred.label_counts.values())
    assert manifest.features.dim == 2 + 5 + 3 + 4  # one-hot: each category and an unseen one


def test_a_regression_label_is_checked_for_numbers(spark, cancer, tmp_path: Path) -> None:
    columns = {"infer": True, "label": "worst area", "task": "regression"}
    frame = cancer.drop(columns=[LABEL])
    good = _config(tmp_path, columns, path=_write(frame, tmp_path), out=tmp_path / "out")
    manifest = open_dataset(spark, run_prepare(spark, cfg=good.prepare).root).manifest
    assert manifest.task == "regression" and len(manifest.columns.numeric) == 29
    assert "worst area" not in manifest.columns.numeric and manifest.inferred.label_counts == {}
    frame["worst area"] = frame["worst area"].astype(object)
    frame.loc[5, "worst area"] = "n/a"
    bad = _config(tmp_path, columns, path=_write(frame, tmp_path), out=tmp_path / "bad")
    with pytest.raises(BadInputError, match=r"'worst area' .* 0 empty and 1 non-numeric"):
        run_prepare(spark, cfg=bad.prepare)
