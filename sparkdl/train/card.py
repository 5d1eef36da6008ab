"""The model card, ``sparkdl_model.json``: what a trained model needs to serve, next to it.

Rank 0 writes it into the model folder before the folder is published to the store (so the
model and its card appear together, or not at all); ``sparkdl evaluate`` and ``sparkdl predict``
read it. This module is the only place that knows its fields.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparkdl.errors import BadInputError
from sparkdl.store import Store
from sparkdl.store.arrow import ArrowStore

CARD = "sparkdl_model.json"
FORMAT = "sparkdl-model/1"
# cards written before the format field existed hold the same fields
_READS = (FORMAT, None)


@dataclass(frozen=True)
class ModelCard:
    """What ``sparkdl train`` records about a model it exported.

    Examples
    --------
    >>> card = ModelCard(featurizer="/d/v1/featurizer", dataset_version="v1", feature_dim=3,
    ...                  label_values=["no", "yes"])
    >>> ModelCard.from_json(card.to_json()) == card, card.num_classes
    (True, 2)
    """

    featurizer: str
    dataset_version: str
    feature_dim: int
    label_values: list[str] = field(default_factory=list)
    format: str = FORMAT

    @property
    def num_classes(self) -> int:
        """Classes of a classification model (1 for regression)."""
        return max(1, len(self.label_values))

    def to_json(self) -> str:
        """The card's file content."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, *, source: str = CARD) -> ModelCard:
        """Parse a card; ``source`` names it in errors.

        Raises
        ------
        BadInputError
            When it is not JSON, lacks a field, or has a format this version cannot read.
        """
        try:
            doc = json.loads(text)
            fmt = doc.get("format")
            if fmt not in _READS:
                raise BadInputError(
                    f"{source} has format {fmt!r}; this sparkdl reads {FORMAT!r}. Retrain the "
                    "model with this sparkdl, or serve it with the version that trained it"
                )
            return cls(
                featurizer=str(doc["featurizer"]),
                dataset_version=str(doc["dataset_version"]),
                feature_dim=int(doc["feature_dim"]),
                label_values=[str(v) for v in doc.get("label_values") or []],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadInputError(
                f"{source} is not a readable model card ({type(exc).__name__}: {exc}); "
                "retrain the model, or restore the file"
            ) from exc


def write_card(folder: str | Path, card: ModelCard) -> None:
    """Rank 0: put ``card`` into the (local, not yet published) model folder ``folder``."""
    Path(folder, CARD).write_text(card.to_json())


def read_card(model: str, *, store: Store | None = None) -> ModelCard:
    """Read the card of the model folder ``model`` (a path or URI; through ``store`` when
    given, the driver's Hadoop store for example).

    Raises
    ------
    BadInputError
        When the folder has no card (it is not a model written by ``sparkdl train``) or the
        card cannot be read.

    Examples
    --------
    >>> read_card("runs/train/model").feature_dim  # doctest: +SKIP
    22
    """
    store = store or ArrowStore(model)
    try:
        text = store.read_bytes(CARD).decode("utf-8")
    except FileNotFoundError:
        raise BadInputError(
            f"{model} has no {CARD}: it is not a model written by `sparkdl train`; "
            "point evaluate.model / predict.model at <train.output>/model"
        ) from None
    return ModelCard.from_json(text, source=f"{store.uri}/{CARD}")


def local_model(model: str, *, cache: str | None = None) -> str:
    """A local folder holding model ``model``: the folder itself on a mounted store, else a
    copy in ``cache`` (this node's temporary folder), made from the published file list.

    Examples
    --------
    >>> local_model("/shared/runs/train/model")  # doctest: +SKIP
    '/shared/runs/train/model'
    """
    from sparkdl.train.checkpoint import FILES

    store = ArrowStore(model)
    local = store.local_path()
    if local is not None:
        return str(local)
    try:
        files = json.loads(store.read_bytes(FILES))["files"]
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise BadInputError(
            f"{model} has no readable {FILES}: it was not published completely by "
            "`sparkdl train`; train again"
        ) from exc
    target = Path(tempfile.mkdtemp(prefix="sparkdl-model-", dir=cache))
    for name in files:
        store.get_file(name, target / name)
    return str(target)
