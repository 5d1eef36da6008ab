"""Config sections ``evaluate`` and ``predict``: applying a trained model on the executors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sparkdl.config.data import SourceConfig


@dataclass(frozen=True)
class EvaluateConfig:
    """Score a trained model on one split of a prepared dataset.

    Attributes
    ----------
    model : str
        The trained model folder (train.output/model).
    dataset : str | None
        The prepared dataset (default: the one the model card names).
    split : Literal['train', 'validation', 'test']
        train, validation or test.
    output : str
        Where metrics and predictions go.
    batch_size : int
        Rows per prediction batch.
    write_predictions : bool
        Also write each row's prediction.
    """

    model: str = "runs/train/model"
    # default: the dataset version the model was trained on (from its sparkdl_model.json)
    dataset: str | None = None
    split: Literal["train", "validation", "test"] = "test"
    output: str = "runs/evaluate"
    batch_size: int = field(default=4096, metadata={"min": 1})
    write_predictions: bool = True


@dataclass(frozen=True)
class PredictConfig:
    """Batch inference: a prepared split, or new raw data featurized with the model's featurizer.

    With ``raw`` set, rows are read like ``prepare.input`` and must carry the columns the model's
    dataset declared (the label may be missing); otherwise ``dataset`` and ``split`` name
    already-featurized rows.

    Attributes
    ----------
    model : str
        The trained model folder (train.output/model).
    raw : SourceConfig | None
        Raw input to featurize and score (a prepare.input section); or use dataset.
    dataset : str | None
        A prepared dataset to score (default: the model card's).
    split : Literal['train', 'validation', 'test']
        train, validation or test (with dataset).
    output : str
        Where predictions go.
    batch_size : int
        Rows per prediction batch.
    """

    model: str = "runs/train/model"
    raw: SourceConfig | None = None
    dataset: str | None = None
    split: Literal["train", "validation", "test"] = "test"
    output: str = "runs/predict"
    batch_size: int = field(default=4096, metadata={"min": 1})
