"""The pure rules of schema inference: kinds, roles, label values, the declaration and its YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from sparkdl.config import SparkdlConfig, load_config
from sparkdl.config.data import ColumnsConfig, InferenceConfig
from sparkdl.config.loader import ConfigError
from sparkdl.data.infer_rules import (
    ColumnEvidence,
    check_label_counts,
    choose_role,
    declaration_yaml,
    kind_of_sample,
    kind_of_type,
    label_values_from,
    resolve_declaration,
)
from sparkdl.errors import BadInputError

DEFAULTS = InferenceConfig()


@pytest.mark.parametrize(
    ("counts", "kind"),
    [
        ({"values": 0, "numbers": 0, "integers": 0, "booleans": 0}, "empty"),
        ({"values": 5, "numbers": 5, "integers": 5, "booleans": 0}, "integer"),
        ({"values": 5, "numbers": 5, "integers": 4, "booleans": 0}, "float"),
        ({"values": 5, "numbers": 4, "integers": 4, "booleans": 0}, "string"),  # one word
        ({"values": 5, "numbers": 0, "integers": 0, "booleans": 5}, "boolean"),
        ({"values": 5, "numbers": 0, "integers": 0, "booleans": 4}, "string"),
    ],
)
def test_a_sampled_text_column_is_a_number_only_when_every_value_is_one(counts, kind) -> None:
    assert kind_of_sample(**counts) == kind


@pytest.mark.parametrize(
    ("dtype", "kind"),
    [
        (T.ByteType(), "integer"),
        (T.IntegerType(), "integer"),
        (T.LongType(), "integer"),
        (T.FloatType(), "float"),
        (T.DoubleType(), "float"),
        (T.DecimalType(10, 2), "float"),
        (T.BooleanType(), "boolean"),
        (T.StringType(), "string"),
        (T.TimestampType(), "timestamp"),
        (T.ArrayType(T.IntegerType()), "array<int>"),
    ],
)
def test_a_typed_column_takes_its_kind_from_its_type(dtype, kind) -> None:
    assert kind_of_type(dtype) == kind


@pytest.mark.parametrize(
    ("evidence", "inference", "role", "why"),
    [
        (ColumnEvidence("a", "float"), DEFAULTS, "numeric", "numbers"),
        (ColumnEvidence("a", "integer", 3), DEFAULTS, "numeric", "integers"),
        (
            ColumnEvidence("a", "integer", 3),
            InferenceConfig(integer_categories=3),
            "categorical",
            "integer_categories=3",
        ),
        (ColumnEvidence("a", "integer", 4), InferenceConfig(integer_categories=3), "numeric", ""),
        (ColumnEvidence("a", "boolean"), DEFAULTS, "categorical", "true/false"),
        (ColumnEvidence("a", "string", 1000), DEFAULTS, "categorical", "about 1000 distinct"),
        (ColumnEvidence("a", "string", 1001), DEFAULTS, "ignore", "max_categories=1000"),
        (ColumnEvidence("a", "string", 40), InferenceConfig(max_categories=30), "ignore", "id"),
        (ColumnEvidence("a", "empty"), DEFAULTS, "ignore", "no value"),
        (ColumnEvidence("a", "timestamp"), DEFAULTS, "ignore", "type timestamp"),
    ],
)
def test_the_role_follows_kind_and_cardinality(evidence, inference, role, why) -> None:
    got, reason = choose_role(evidence, inference=inference)
    assert got == role
    assert why in reason


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["malignant", "benign", "benign"], ("benign", "malignant")),
        ([" yes", "no "], ("no", "yes")),
        (["10", "2", "1"], ("1", "2", "10")),  # by number, not as text
        (["1.0", "0.0", "1"], ("0", "1")),  # a typed double label: one class per number
        (["0.5", "-1", "2e3"], ("-1", "0.5", "2000")),
        (["1", "one"], ("1", "one")),
        (["nan", "inf"], ("inf", "nan")),  # not numbers to Spark's label matching either
    ],
)
def test_label_values_come_in_a_fixed_order(values, expected) -> None:
    assert label_values_from(values) == expected


def test_label_counts_merge_spellings_of_one_number() -> None:
    values, counts = check_label_counts(
        {"1": 3, "1.0": 2, "0": 4}, label="y", where="t", inference=DEFAULTS
    )
    assert values == ("0", "1") and counts == {"0": 4, "1": 5}


@pytest.mark.parametrize(
    ("counts", "inference", "match"),
    [
        ({None: 3, "a": 5, "b": 1}, DEFAULTS, r"label column 'my y' is empty or null in 3 row"),
        (
            {str(i): 1 for i in range(6)},
            InferenceConfig(max_label_values=5),
            r"'my y' of t has more than 5 distinct values.*task: regression",
        ),
        ({"a": 9}, DEFAULTS, r"'my y' of t holds 1 distinct value\(s\) \['a'\] in 9 rows"),
        ({}, DEFAULTS, r"holds 0 distinct value"),
    ],
)
def test_bad_labels_are_refused_naming_the_column(counts, inference, match) -> None:
    with pytest.raises(BadInputError, match=match):
        check_label_counts(counts, label="my y", where="t", inference=inference)


def test_the_declaration_keeps_the_users_roles_and_the_inputs_order() -> None:
    names = ["row id", "z", "city", "note", "flag", "a", "when", "drop me", "y"]
    evidence = {
        "z": ColumnEvidence("z", "float"),
        "city": ColumnEvidence("city", "string", 12),
        "note": ColumnEvidence("note", "string", 5000),
        "flag": ColumnEvidence("flag", "boolean"),
        "a": ColumnEvidence("a", "integer"),
        "when": ColumnEvidence("when", "date"),
        "drop me": ColumnEvidence("drop me", "float"),
    }
    user = ColumnsConfig(infer=True, label="y", id="row id", ignore=("drop me",))
    cols, roles = resolve_declaration(
        names=names,
        evidence=evidence,
        columns=user,
        label_values=("no", "yes"),
        inference=DEFAULTS,
    )
    assert cols.numeric == ("z", "a")
    assert cols.categorical == ("city", "flag")
    assert cols.ignore == ("drop me", "note", "when")  # the user's first, then inference's
    assert (cols.id, cols.label, cols.label_values, cols.infer) == (
        "row id",
        "y",
        ("no", "yes"),
        False,
    )
    assert {n: r.role for n, r in roles.items()} == {
        "row id": "id",
        "z": "numeric",
        "city": "categorical",
        "note": "ignore",
        "flag": "categorical",
        "a": "numeric",
        "when": "ignore",
        "drop me": "ignore",
        "y": "label",
    }
    assert roles["city"].distinct_approx == 12


def test_no_feature_at_all_is_refused_with_each_columns_reason() -> None:
    with pytest.raises(BadInputError, match=r"no feature column.*note: text with about 9000"):
        resolve_declaration(
            names=["note", "y"],
            evidence={"note": ColumnEvidence("note", "string", 9000)},
            columns=ColumnsConfig(infer=True, label="y"),
            label_values=("a", "b"),
            inference=DEFAULTS,
        )


@pytest.mark.parametrize(
    "declared",
    [
        ColumnsConfig(
            label="diagnosis",
            label_values=("benign", "malignant"),
            numeric=("mean radius", "worst concave points"),
        ),
        ColumnsConfig(label="y", label_values=("no", "yes", "0", "1.5"), categorical=("on",)),
        ColumnsConfig(label="price", task="regression", numeric=("rooms",), categorical=("city",)),
        ColumnsConfig(
            label="y",
            label_values=("a", "b"),
            numeric=("x",),
            id="row id",
            id_type="long",
            required=("x",),
            ignore=("note", "2026-01-01"),
        ),
    ],
)
def test_the_printed_yaml_loads_back_into_the_same_declaration(declared, tmp_path: Path) -> None:
    path = tmp_path / "columns.yaml"
    path.write_text(declaration_yaml(declared))
    assert load_config(SparkdlConfig, files=[path]).prepare.columns == declared


def test_infer_with_features_or_classes_written_as_well_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"infer: true and also numeric, label_values"):
        load_config(
            SparkdlConfig,
            overrides=[
                "prepare.columns.infer=true",
                "prepare.columns.numeric=[a]",
                "prepare.columns.label_values=[x, y]",
            ],
        )
    # the section's default features do not count as written
    cols = load_config(SparkdlConfig, overrides=["prepare.columns.infer=true"]).prepare.columns
    assert cols.infer and cols.label == "label"


def test_columns_auto_without_a_label_says_how_to_name_it(tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    path.write_text("prepare:\n  columns: auto\n")
    with pytest.raises(ConfigError, match=r"got 'auto'\. .*\{infer: true, label: <label column>\}"):
        load_config(SparkdlConfig, files=[path])


@pytest.mark.parametrize(
    ("key", "name", "what"),
    [("numeric", "a.b", "dot"), ("categorical", "c.d", "dot"), ("label", "y`", "backtick")],
)
def test_names_spark_ml_cannot_take_are_refused(key, name, what) -> None:
    values = {"numeric": ("x",), key: (name,) if key != "label" else name}
    with pytest.raises(BadInputError, match=rf"prepare.columns.{key} names {name!r}.*{what}"):
        ColumnsConfig(**values)
    assert ColumnsConfig(numeric=("mean radius",), label="my label").numeric  # spaces are fine
