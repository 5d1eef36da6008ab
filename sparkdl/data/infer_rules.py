"""The pure rules of schema inference (``prepare.columns.infer``); no Spark session needed.

:mod:`sparkdl.data.infer` measures the data and calls these: a column's kind from its type or
from counts over sampled text (:func:`kind_of_type`, :func:`kind_of_sample`), its role from its
kind and distinct count (:func:`choose_role`), the label's classes (:func:`label_values_from`,
:func:`check_label_counts`), the declaration (:func:`resolve_declaration`) and its YAML
(:func:`declaration_yaml`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from sparkdl.config.data import ColumnsConfig, InferenceConfig
from sparkdl.data.manifest import InferredColumn
from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql.types import DataType

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class ColumnEvidence:
    """What the data says about one column: its kind and, where measured, distinct values."""

    name: str
    kind: str  # integer, float, boolean, string, empty, or an unsupported type's name
    distinct: int | None = None


def kind_of_type(dtype: DataType) -> str:
    """The kind of a typed column (Parquet, table, DataFrame).

    Examples
    --------
    >>> from pyspark.sql import types as T
    >>> [kind_of_type(t) for t in (T.LongType(), T.DoubleType(), T.StringType(), T.DateType())]
    ['integer', 'float', 'string', 'date']
    """
    from pyspark.sql import types as T

    if isinstance(dtype, T.IntegralType):
        return "integer"
    if isinstance(dtype, T.NumericType):
        return "float"
    if isinstance(dtype, T.BooleanType):
        return "boolean"
    if isinstance(dtype, T.StringType):
        return "string"
    return dtype.simpleString()


def kind_of_sample(*, values: int, numbers: int, integers: int, booleans: int) -> str:
    """The kind of a text column from counts over its sampled non-empty values.

    Examples
    --------
    >>> kind_of_sample(values=10, numbers=10, integers=4, booleans=0)
    'float'
    >>> kind_of_sample(values=10, numbers=9, integers=9, booleans=0)
    'string'
    """
    if values == 0:
        return "empty"
    if numbers == values:
        return "integer" if integers == values else "float"
    return "boolean" if booleans == values else "string"


def choose_role(evidence: ColumnEvidence, *, inference: InferenceConfig) -> tuple[str, str]:
    """The role (numeric, categorical or ignore) that a column's evidence gives it, and why.

    Examples
    --------
    >>> choose_role(ColumnEvidence("mean radius", "float"), inference=InferenceConfig())
    ('numeric', 'numbers')
    >>> choose_role(ColumnEvidence("email", "string", 5000), inference=InferenceConfig())[0]
    'ignore'
    """
    kind, distinct = evidence.kind, evidence.distinct
    if kind == "float":
        return "numeric", "numbers"
    if kind == "integer":
        limit = inference.integer_categories
        if limit and distinct is not None and distinct <= limit:
            return "categorical", (
                f"integers with {distinct} distinct values "
                f"(<= prepare.inference.integer_categories={limit})"
            )
        return "numeric", "integers"
    if kind == "boolean":
        return "categorical", "true/false values"
    if kind == "string":
        if distinct is not None and distinct > inference.max_categories:
            return "ignore", (
                f"text with about {distinct} distinct values, above "
                f"prepare.inference.max_categories={inference.max_categories} (an id or free "
                "text?); raise that limit to make it categorical, or declare it as "
                "prepare.columns.id"
            )
        return "categorical", f"text with about {distinct} distinct values"
    if kind == "empty":
        return "ignore", "no value in the sampled rows"
    return "ignore", (
        f"type {kind} is not a feature type; convert it (prepare.input.sql) and declare it"
    )


def label_values_from(values: Iterable[str]) -> tuple[str, ...]:
    """The distinct label values in a fixed order: by number when all are numbers (``1`` and
    ``1.0`` are one class, written ``1``), else sorted as text.

    Examples
    --------
    >>> label_values_from(["benign", "malignant", "benign"])
    ('benign', 'malignant')
    >>> label_values_from(["10", "2", "1.0", "1"])
    ('1', '2', '10')
    """
    texts = {v.strip() for v in values}
    if texts and all(_NUMBER.fullmatch(v) for v in texts):
        numbers = sorted({float(v) for v in texts})
        return tuple(str(int(n)) if n.is_integer() else repr(n) for n in numbers)
    return tuple(sorted(texts))


def check_label_counts(
    counts: Mapping[str | None, int],
    *,
    label: str,
    where: str,
    inference: InferenceConfig,
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The label values and rows of each, from a label ``groupBy`` (``None``: missing labels);
    refuse missing labels, too many values, or fewer than two.

    Examples
    --------
    >>> check_label_counts({"a": 3, "b": 1}, label="y", where="t", inference=InferenceConfig())
    (('a', 'b'), {'a': 3, 'b': 1})
    """
    total = sum(counts.values())
    nulls = counts.get(None, 0)
    if nulls:
        raise BadInputError(
            f"the label column {label!r} is empty or null in {nulls} row(s) of {where}, and "
            "inference takes the label values from the data. Drop or fill those rows first "
            f"(for example prepare.input.sql: SELECT * FROM ... WHERE `{label}` IS NOT NULL), "
            "or declare prepare.columns yourself (infer: false), and prepare quarantines them "
            "as null_required within prepare.max_bad_fraction."
        )
    present = [v for v in counts if v is not None]
    limit = inference.max_label_values
    if len(present) > limit:
        raise BadInputError(
            f"the label column {label!r} of {where} has more than {limit} distinct values "
            f"(prepare.inference.max_label_values={limit}). For a numeric target set "
            "prepare.columns.task: regression; for that many classes raise "
            "prepare.inference.max_label_values; or name another column as the label."
        )
    values = label_values_from(present)
    by_value = dict.fromkeys(values, 0)
    for raw, n in counts.items():
        if raw is not None:
            by_value[label_values_from([raw])[0]] += n
    if len(values) < 2:
        raise BadInputError(
            f"the label column {label!r} of {where} holds {len(values)} distinct value(s) "
            f"{list(values)} in {total} rows; a classification needs two. Check "
            "prepare.columns.label, or the input's rows."
        )
    return values, by_value


def resolve_declaration(
    *,
    names: Sequence[str],
    evidence: Mapping[str, ColumnEvidence],
    columns: ColumnsConfig,
    label_values: tuple[str, ...],
    inference: InferenceConfig,
) -> tuple[ColumnsConfig, dict[str, InferredColumn]]:
    """The declaration for input columns ``names``, given each one's evidence.

    ``columns`` is the user's (``infer: true``): its label, task, id, id_type, required and
    ignore are kept; features keep the input's column order.

    Raises
    ------
    BadInputError
        When no column qualifies as a feature (each column's reason is listed).

    Examples
    --------
    >>> cols, why = resolve_declaration(
    ...     names=["id", "age", "city", "y"],
    ...     evidence={"age": ColumnEvidence("age", "integer"),
    ...               "city": ColumnEvidence("city", "string", 12)},
    ...     columns=ColumnsConfig(infer=True, label="y", id="id"),
    ...     label_values=("no", "yes"), inference=InferenceConfig())
    >>> cols.numeric, cols.categorical, cols.label_values, why["city"].role
    (('age',), ('city',), ('no', 'yes'), 'categorical')
    """
    roles: dict[str, InferredColumn] = {}
    for name in names:
        ev = evidence.get(name)
        kind, distinct = (ev.kind, ev.distinct) if ev else ("", None)
        if name == columns.label:
            role, reason = "label", "prepare.columns.label"
        elif name == columns.id:
            role, reason = "id", "prepare.columns.id"
        elif name in columns.ignore:
            role, reason = "ignore", "listed under prepare.columns.ignore"
        else:
            role, reason = choose_role(ev or ColumnEvidence(name, kind), inference=inference)
        roles[name] = InferredColumn(kind=kind, role=role, reason=reason, distinct_approx=distinct)
    of = {r: tuple(n for n in names if roles[n].role == r) for r in ("numeric", "categorical")}
    if not of["numeric"] and not of["categorical"]:
        why = "; ".join(f"{n}: {c.reason}" for n, c in roles.items() if c.role == "ignore")
        raise BadInputError(
            f"inference found no feature column among {list(names)} ({why or 'none left'}). "
            "Declare the features yourself under prepare.columns (infer: false)."
        )
    inferred_ignore = tuple(
        n for n in names if roles[n].role == "ignore" and n not in columns.ignore
    )
    try:
        declared = ColumnsConfig(
            label=columns.label,
            task=columns.task,
            label_values=label_values if columns.task == "classification" else ("0", "1"),
            numeric=of["numeric"],
            categorical=of["categorical"],
            id=columns.id,
            id_type=columns.id_type,
            required=columns.required,
            ignore=(*columns.ignore, *inferred_ignore),
        )
    except BadInputError as exc:
        raise BadInputError(f"the inferred declaration is refused: {exc}") from exc
    return declared, roles


def declaration_yaml(columns: ColumnsConfig) -> str:
    """``columns`` as a YAML block to paste into a config file (keys that differ from the
    defaults, and always the features and classes).

    Examples
    --------
    >>> print(declaration_yaml(ColumnsConfig(label="y", label_values=("no", "yes"),
    ...                                      numeric=("mean radius",))), end="")
    prepare:
      columns:
        label: y
        task: classification
        label_values:
        - 'no'
        - 'yes'
        numeric:
        - mean radius
        categorical: []
    """
    body: dict[str, object] = {"label": columns.label, "task": columns.task}
    if columns.task == "classification":
        body["label_values"] = list(columns.label_values)
    body["numeric"] = list(columns.numeric)
    body["categorical"] = list(columns.categorical)
    if columns.id:
        body["id"] = columns.id
        body["id_type"] = columns.id_type
    for key in ("required", "ignore"):
        if getattr(columns, key):
            body[key] = list(getattr(columns, key))
    return yaml.safe_dump(
        {"prepare": {"columns": body}}, sort_keys=False, allow_unicode=True, width=4096
    )
