"""Config sections for the data jobs: ``generate`` (synthetic raw data) and ``prepare``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sparkdl.errors import BadInputError

InputFormat = Literal["csv", "json", "parquet"]
# The numeric columns prepare.columns declares by default (those `sparkdl generate` writes).
DEFAULT_NUMERIC = tuple(f"x{i}" for i in range(8))


@dataclass(frozen=True)
class GenerateConfig:
    """Synthetic raw data, built on the executors and deterministic by seed.

    ``kind: classification`` plants a non-linear decision function over numeric and categorical
    columns (``x0..``, ``c0..``) and flips ``label_noise`` of the labels; ``kind: blobs`` draws
    Gaussian-mixture points around ``clusters`` known centres (written to ``_centers.json``).

    Attributes
    ----------
    kind : Literal['classification', 'blobs']
        classification (a planted non-linear rule) or blobs (Gaussian clusters).
    rows : int
        Rows to generate.
    partitions : int | None
        Output partitions (default: the session's parallelism).
    seed : int
        Seed: the same seed gives the same rows.
    format : Literal['csv', 'parquet']
        csv or parquet.
    output : str
        Where the raw rows go (any Hadoop path).
    overwrite : bool
        Replace an existing output.
    numeric_features : int
        Numeric columns x0, x1, ...
    categorical_features : int
        Categorical columns c0, c1, ... (classification only).
    categories : int
        Distinct values of each categorical column.
    classes : int
        Label classes (classification).
    label_noise : float
        Share of labels flipped at random (classification).
    clusters : int
        Gaussian clusters (blobs); their centres go to _centers.json.
    cluster_std : float
        Standard deviation of each cluster (blobs).
    center_box : float
        Centres are drawn uniformly in [-center_box, center_box] per feature (blobs).
    """

    kind: Literal["classification", "blobs"] = "classification"
    rows: int = field(default=100_000, metadata={"min": 1})
    partitions: int | None = field(default=None, metadata={"min": 1})
    seed: int = 7
    format: Literal["csv", "parquet"] = "csv"
    output: str = "data/raw/classification"
    overwrite: bool = True
    numeric_features: int = field(default=8, metadata={"min": 1, "max": 10_000})
    categorical_features: int = field(default=2, metadata={"min": 0, "max": 1_000})
    categories: int = field(default=6, metadata={"min": 2})
    classes: int = field(default=2, metadata={"min": 2, "max": 1_000})
    label_noise: float = field(default=0.05, metadata={"min": 0.0, "max": 0.5})
    clusters: int = field(default=4, metadata={"min": 1, "max": 10_000})
    cluster_std: float = field(default=1.0, metadata={"min": 0.0})
    center_box: float = field(default=10.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class SourceConfig:
    """Where the raw data is and how to parse it (any path Spark's Hadoop file systems accept).

    Attributes
    ----------
    path : str
        The raw input: a file or folder on any Hadoop file system (file://, hdfs://, s3a://,
        dbfs:/).
    format : InputFormat
        csv, json (one object per line) or parquet.
    header : bool
        CSV files have a header line (required: columns are matched by name).
    delimiter : str
        CSV field separator: one character, or \t.
    quote : str
        CSV quote character.
    escape : str
        CSV escape character.
    encoding : str
        Text encoding of CSV and JSON files.
    table : str | None
        A table or view of the session's catalog to read instead of files (database.table).
    sql : str | None
        A SQL query to read instead of files, run with spark.sql in the job's session.
    """

    path: str = "data/raw/classification"
    format: InputFormat = "csv"
    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    escape: str = "\\"
    encoding: str = "UTF-8"
    table: str | None = None
    sql: str | None = None

    def __post_init__(self) -> None:
        if self.table and self.sql:
            raise BadInputError(
                "prepare.input sets both table and sql; give one (a table or view name, or a "
                "query), or neither to read the files at prepare.input.path"
            )
        if len(self.delimiter) != 1 and self.delimiter != "\\t":
            raise BadInputError(
                f"prepare.input.delimiter is {self.delimiter!r}; use one character such as ',' "
                "or ';' (or '\\t' for tabs)"
            )
        if self.format == "csv" and not self.header:
            raise BadInputError(
                "prepare.input.header is false; sparkdl matches CSV columns by their header "
                "names, so the files need a header line (set prepare.input.header: true)"
            )


@dataclass(frozen=True)
class ColumnsConfig:
    """The declared input schema: which column is what.

    Attributes
    ----------
    label : str
        The label column.
    task : Literal['classification', 'regression']
        classification or regression.
    label_values : tuple[str, ...]
        The label's classes, in the order of the model's outputs (classification).
    numeric : tuple[str, ...]
        Numeric feature columns.
    categorical : tuple[str, ...]
        Categorical feature columns.
    id : str | None
        A column that identifies a row (kept beside the features); default none.
    id_type : Literal['string', 'long']
        string or long: the id column's type.
    required : tuple[str, ...]
        Declared columns that must not be null (besides label and id): a null makes the row bad
        (quarantined).
    ignore : tuple[str, ...]
        Input columns to drop.
    infer : bool
        Infer the declaration from the data: name only the label (and, if wanted, id, ignore,
        required, task); numeric, categorical and label_values then come from the Parquet
        footer or table schema, or a sample of CSV/JSON rows (see prepare.inference). The
        inferred declaration is printed as YAML to paste here, and stored in the manifest.
    """

    # Shown when prepare.columns is given as one word (`columns: auto`): the label must be named.
    SCALAR_FIX = (
        "To infer the columns from the data, name the label: "
        "prepare.columns: {infer: true, label: <label column>}."
    )

    label: str = "label"
    task: Literal["classification", "regression"] = "classification"
    label_values: tuple[str, ...] = ("0", "1")
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    id: str | None = None
    id_type: Literal["string", "long"] = "string"
    required: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    infer: bool = False

    def __post_init__(self) -> None:
        if self.infer:
            self._check_inferable()
        elif not self.numeric and not self.categorical:
            raise BadInputError(
                "prepare.columns declares no features; list input columns under "
                "prepare.columns.numeric and/or prepare.columns.categorical"
            )
        # With infer, numeric and categorical hold the section's defaults until the data speaks.
        features = () if self.infer else (*self.numeric, *self.categorical)
        names = [self.label, *features, *([self.id] if self.id else [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BadInputError(
                f"prepare.columns names {dupes} more than once; each column has one role"
            )
        _check_names(self)
        unknown = sorted(set(self.required) - set(names))
        if unknown and not self.infer:
            raise BadInputError(
                f"prepare.columns.required lists {unknown}, which are not declared columns "
                f"(declared: {names})"
            )
        if self.task == "classification" and len(set(self.label_values)) < 2:
            raise BadInputError(
                f"prepare.columns.label_values is {list(self.label_values)}; a classification task "
                "needs at least two distinct label values"
            )

    @property
    def declared(self) -> tuple[str, ...]:
        """Every declared input column in a fixed order: id, label, numeric, categorical."""
        return (*([self.id] if self.id else []), self.label, *self.numeric, *self.categorical)

    def _check_inferable(self) -> None:
        """With infer, the data gives the features and classes: refuse them written as well."""
        given = [
            key
            for key, value, default in (
                ("numeric", self.numeric, ((), DEFAULT_NUMERIC)),
                ("categorical", self.categorical, ((),)),
                ("label_values", self.label_values, (("0", "1"),)),
            )
            if value not in default
        ]
        if given:
            raise BadInputError(
                f"prepare.columns sets infer: true and also {', '.join(given)}; with infer the "
                "data gives the feature columns and label values. Remove "
                f"{', '.join(f'prepare.columns.{k}' for k in given)} (list columns to leave out "
                "under prepare.columns.ignore), or set infer: false and declare every column."
            )


def _check_names(columns: ColumnsConfig) -> None:
    """Refuse names that Spark ML stages or backtick quoting cannot take (spaces are fine)."""
    for key in ("numeric", "categorical", "label", "id"):
        value = getattr(columns, key)
        for name in (value,) if isinstance(value, str | None) else value:
            if name is None:
                continue
            if "`" in name or ("." in name and key in ("numeric", "categorical")):
                raise BadInputError(
                    f"prepare.columns.{key} names {name!r}, which holds a "
                    f"{'backtick' if '`' in name else 'dot'}: Spark ML's feature stages read a "
                    "dot as a struct field, and a backtick ends a quoted name. Rename the column "
                    "in the data, or with prepare.input.sql (SELECT `a.b` AS a_b, ...), or list "
                    "it under prepare.columns.ignore."
                )


@dataclass(frozen=True)
class SplitConfig:
    """Train/validation/test fractions, assigned by a salted hash of a stable row key.

    Attributes
    ----------
    train : float
        Share of rows in the train split.
    validation : float
        Share of rows in the validation split.
    test : float
        Share of rows in the test split (the three add up to 1).
    salt : int
        Salt of the row-key hash that assigns splits.
    """

    train: float = field(default=0.8, metadata={"min": 0.0, "max": 1.0})
    validation: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    test: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    salt: int = 17

    def __post_init__(self) -> None:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise BadInputError(
                f"prepare.split fractions add up to {total:g} (train {self.train}, validation "
                f"{self.validation}, test {self.test}); they must add up to 1"
            )
        if self.train <= 0:
            raise BadInputError(
                "prepare.split.train must be above 0: the featurizer is fitted on it"
            )


@dataclass(frozen=True)
class FeaturizeConfig:
    """Spark ML featurization, fitted on the training split only.

    Attributes
    ----------
    impute : Literal['mean', 'median']
        mean or median: what a missing numeric value becomes (fitted on train).
    categorical : Literal['auto', 'onehot', 'index', 'hash']
        auto, onehot, index or hash: how categorical columns are encoded (auto: one-hot up to
        max_onehot distinct values, else hash).
    max_onehot : int
        Most distinct values that auto encodes one-hot.
    hash_buckets : int
        Buckets of the hash encoding.
    scale : Literal['standard', 'minmax', 'none']
        standard, minmax or none: numeric scaling (fitted on train).
    """

    impute: Literal["mean", "median"] = "mean"
    categorical: Literal["auto", "onehot", "index", "hash"] = "auto"
    max_onehot: int = field(default=32, metadata={"min": 2})
    hash_buckets: int = field(default=64, metadata={"min": 2})
    scale: Literal["standard", "minmax", "none"] = "standard"


@dataclass(frozen=True)
class LayoutConfig:
    """Parquet layout for the readers: balanced row groups across ``workers`` ranks.

    Attributes
    ----------
    workers : int
        Ranks the layout balances row groups for (match launch.num_workers).
    target_row_group_mb : float
        Row group size to aim for, in MB.
    min_row_groups_per_worker : int
        Row groups each rank gets at least.
    """

    workers: int = field(default=2, metadata={"min": 1})
    target_row_group_mb: float = field(default=32.0, metadata={"min": 0.01})
    min_row_groups_per_worker: int = field(default=1, metadata={"min": 1})


@dataclass(frozen=True)
class InferenceConfig:
    """How ``prepare.columns.infer`` reads a declaration from the data.

    Types come from the Parquet footer or the table's schema, or, for CSV and JSON, from the
    first ``sample_rows`` rows; distinct counts from bounded Spark aggregations over every row
    (nothing but counts and at most ``max_label_values + 1`` label values reach the driver).
    Numbers become numeric, booleans categorical, text categorical up to ``max_categories``
    distinct values (above that it looks like an id or free text, and is ignored).

    Attributes
    ----------
    max_label_values : int
        Most distinct label values a classification label may have; above it prepare refuses,
        naming the label column (set task: regression for a numeric target).
    max_categories : int
        Most distinct values (approximate, over all rows) of a text column made categorical;
        a column with more is listed under ignore, with a warning.
    integer_categories : int
        Integer columns with at most this many distinct values become categorical (0: integer
        columns are always numeric).
    sample_rows : int
        CSV and JSON input: rows read to tell each column's type (a column is numeric when every
        non-empty value in them is a number).
    """

    max_label_values: int = field(default=100, metadata={"min": 2, "max": 100_000})
    max_categories: int = field(default=1000, metadata={"min": 1})
    integer_categories: int = field(default=0, metadata={"min": 0})
    sample_rows: int = field(default=10_000, metadata={"min": 1, "max": 10_000_000})


@dataclass(frozen=True)
class PrepareConfig:
    """Raw data to validated, featurized, split, published Parquet.

    Attributes
    ----------
    output : str
        The prepared dataset's root: versions under it, the current one published atomically.
    max_bad_fraction : float
        Share of quarantined rows above which prepare fails.
    keep_versions : int
        Published dataset versions kept under the output root; older ones are deleted.
    """

    input: SourceConfig = field(default_factory=SourceConfig)
    columns: ColumnsConfig = field(default_factory=lambda: ColumnsConfig(numeric=DEFAULT_NUMERIC))
    output: str = "data/prepared/classification"
    max_bad_fraction: float = field(default=0.01, metadata={"min": 0.0, "max": 1.0})
    split: SplitConfig = field(default_factory=SplitConfig)
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    keep_versions: int = field(default=2, metadata={"min": 1})
    inference: InferenceConfig = field(default_factory=InferenceConfig)
