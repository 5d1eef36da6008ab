"""Config sections for the data jobs: ``generate`` (synthetic raw data) and ``prepare``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sparkdl.errors import BadInputError

InputFormat = Literal["csv", "json", "parquet"]


@dataclass(frozen=True)
class GenerateConfig:
    """Synthetic raw data, built on the executors and deterministic by seed.

    ``kind: classification`` plants a non-linear decision function over numeric and categorical
    columns (``x0..``, ``c0..``) and flips ``label_noise`` of the labels; ``kind: blobs`` draws
    Gaussian-mixture points around ``clusters`` known centres (written to ``_centers.json``).
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
    """Where the raw data is and how to parse it (any path Spark's Hadoop file systems accept)."""

    path: str = "data/raw/classification"
    format: InputFormat = "csv"
    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    escape: str = "\\"
    encoding: str = "UTF-8"

    def __post_init__(self) -> None:
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
    """The declared input schema: which column is what."""

    label: str = "label"
    task: Literal["classification", "regression"] = "classification"
    label_values: tuple[str, ...] = ("0", "1")
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    id: str | None = None
    id_type: Literal["string", "long"] = "string"
    required: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.numeric and not self.categorical:
            raise BadInputError(
                "prepare.columns declares no features; list input columns under "
                "prepare.columns.numeric and/or prepare.columns.categorical"
            )
        names = [self.label, *self.numeric, *self.categorical, *([self.id] if self.id else [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BadInputError(
                f"prepare.columns names {dupes} more than once; each column has one role"
            )
        unknown = sorted(set(self.required) - set(names))
        if unknown:
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


@dataclass(frozen=True)
class SplitConfig:
    """Train/validation/test fractions, assigned by a salted hash of a stable row key."""

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
    """Spark ML featurization, fitted on the training split only."""

    impute: Literal["mean", "median"] = "mean"
    categorical: Literal["auto", "onehot", "index", "hash"] = "auto"
    max_onehot: int = field(default=32, metadata={"min": 2})
    hash_buckets: int = field(default=64, metadata={"min": 2})
    scale: Literal["standard", "minmax", "none"] = "standard"


@dataclass(frozen=True)
class LayoutConfig:
    """Parquet layout for the readers: balanced row groups across ``workers`` ranks."""

    workers: int = field(default=2, metadata={"min": 1})
    target_row_group_mb: float = field(default=32.0, metadata={"min": 0.01})
    min_row_groups_per_worker: int = field(default=1, metadata={"min": 1})


@dataclass(frozen=True)
class PrepareConfig:
    """Raw data to validated, featurized, split, published Parquet."""

    input: SourceConfig = field(default_factory=SourceConfig)
    columns: ColumnsConfig = field(
        default_factory=lambda: ColumnsConfig(numeric=tuple(f"x{i}" for i in range(8)))
    )
    output: str = "data/prepared/classification"
    max_bad_fraction: float = field(default=0.01, metadata={"min": 0.0, "max": 1.0})
    split: SplitConfig = field(default_factory=SplitConfig)
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    keep_versions: int = field(default=2, metadata={"min": 1})
