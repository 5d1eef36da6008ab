"""The dataset manifest: what a published version holds, as a frozen record.

``<version>/manifest.json`` is written by ``sparkdl prepare`` and read by every job that uses
the data (train, baselines, evaluate, predict). This module is the only one that writes or
parses it; everything else reads attributes of :class:`DatasetManifest`, usually through
:class:`sparkdl.data.dataset.PreparedDataset`.

The file carries ``format: "sparkdl-prepared/1"``; a reader refuses any other format with the
fix (prepare the data again). Fields follow :mod:`sparkdl.contract`'s rule: a missing or
mistyped field is refused, an unknown one is ignored (a newer sparkdl may add fields without a
new format number). Manifests written before this module existed have the same fields and
format and are read unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkdl.contract import check_format, from_plain, to_plain

if TYPE_CHECKING:
    from sparkdl.config.data import ColumnsConfig
    from sparkdl.data.fs import HadoopFS

FORMAT = "sparkdl-prepared/1"
SUPPORTED_FORMATS = (FORMAT,)
MANIFEST = "manifest.json"
_FIX = "Prepare the data again with this sparkdl: `sparkdl prepare --force`."


@dataclass(frozen=True)
class InputInfo:
    """The raw input a version was built from."""

    path: str
    format: str
    files: int
    bytes: int
    fingerprint: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class FeatureInfo:
    """The ``features`` column: its length, the name of each position, the encodings used."""

    column: str
    label_column: str
    dim: int
    names: tuple[str, ...]
    encodings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowCounts:
    """Rows in, valid and quarantined (``input == valid + quarantined``)."""

    input: int
    valid: int
    quarantined: int


@dataclass(frozen=True)
class QuarantineInfo:
    """Where the rejected rows are (None when there are none) and why they were rejected."""

    path: str | None
    rows: int
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitFile:
    """One Parquet file of a split, with the rows of each of its row groups."""

    name: str
    rows: int
    row_groups: tuple[int, ...]
    bytes: int


@dataclass(frozen=True)
class SplitInfo:
    """One split: its folder (relative to the version), rows, content digest and files."""

    path: str
    rows: int
    digest: str
    files: tuple[SplitFile, ...]
    row_groups: int
    rank_rows: tuple[int, ...]

    @property
    def group_rows(self) -> list[int]:
        """Rows of every row group of the split, file by file."""
        return [rg for f in self.files for rg in f.row_groups]


@dataclass(frozen=True)
class NumericStats:
    """Statistics of one numeric column on the training split (None when it has no values)."""

    count: int
    nulls: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class Statistics:
    """Statistics of the training split."""

    rows: int
    numeric: dict[str, NumericStats]
    categorical_distinct_approx: dict[str, int]
    train_label_counts: dict[str, int]


@dataclass(frozen=True)
class InferredColumn:
    """What inference saw in one input column and the role it gave it."""

    kind: str  # integer, float, boolean, string, empty, or the unsupported type's name
    role: str  # label, id, numeric, categorical or ignore
    reason: str
    distinct_approx: int | None = None


@dataclass(frozen=True)
class InferenceInfo:
    """How ``prepare.columns.infer`` chose the declaration that ``config.columns`` holds.

    ``declaration`` is the YAML printed for the user to paste into the config; ``evidence``
    says what the types were read from; ``options`` is ``prepare.inference`` as used.
    """

    declaration: str
    evidence: str
    label_counts: dict[str, int]
    columns: dict[str, InferredColumn]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetManifest:
    """What one published dataset version holds (``manifest.json``).

    ``config`` and ``layout`` are plain copies of the ``prepare`` config the version was built
    with (``output`` left out): records of what was asked, kept as written. When the columns
    were inferred, ``config.columns`` is the inferred declaration (an ordinary one, which every
    later job reads) and ``inferred`` says how it was found.

    Examples
    --------
    >>> m = read_manifest(fs, "data/prepared/x/versions/20261122T101500000000-ab12")  # doctest: +SKIP
    >>> m.splits["train"].rows, m.features.dim, m.label_values  # doctest: +SKIP
    (80140, 12, ('0', '1'))
    """

    version: str
    version_key: str
    created_at: str
    code_version: str
    config_hash: str
    config: dict[str, Any]
    input: InputInfo
    schema: dict[str, str]
    task: str
    label_values: tuple[str, ...] | None
    id_column: str | None
    features: FeatureInfo
    featurizer: str
    rows: RowCounts
    quarantine: QuarantineInfo
    splits: dict[str, SplitInfo]
    statistics: Statistics
    layout: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    format: str = FORMAT
    inferred: InferenceInfo | None = None  # set when prepare.columns.infer chose the columns

    @property
    def columns(self) -> ColumnsConfig:
        """The ``prepare.columns`` this version was built with, validated again."""
        from sparkdl.config.data import ColumnsConfig
        from sparkdl.config.loader import load_section

        return load_section(
            ColumnsConfig, self.config["columns"], source=f"{MANIFEST} config.columns"
        )

    def to_json(self) -> str:
        """The manifest's file text (sorted keys, indented)."""
        plain = to_plain(self)
        if self.inferred is None:
            del plain["inferred"]  # a declared schema's manifest reads as it did before
        return json.dumps(plain, indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> DatasetManifest:
        """Parse a manifest's text; ``source`` names the file in errors.

        Raises
        ------
        BadInputError
            Text that is not JSON, a format this sparkdl does not read (the message names the
            file, the format found and the ones supported), a missing or mistyped field.
        """
        from sparkdl.errors import BadInputError

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{source} is not JSON ({exc}). {_FIX}") from exc
        if not isinstance(data, dict):
            raise BadInputError(f"{source} is not a JSON object. {_FIX}")
        check_format(data.get("format"), supported=SUPPORTED_FORMATS, source=source, fix=_FIX)
        return from_plain(cls, data, source=source, fix=_FIX)


def write_manifest(fs: HadoopFS, folder: str, manifest: DatasetManifest) -> str:
    """Write ``<folder>/manifest.json`` and return its path (the caller writes ``_SUCCESS``)."""
    path = f"{folder}/{MANIFEST}"
    fs.write_text(path, manifest.to_json())
    return path


def read_manifest(fs: HadoopFS, folder: str) -> DatasetManifest:
    """Read and check ``<folder>/manifest.json``.

    Raises
    ------
    BadInputError
        See :meth:`DatasetManifest.from_json`.
    """
    path = f"{folder}/{MANIFEST}"
    return DatasetManifest.from_json(fs.read_text(path), source=path)
