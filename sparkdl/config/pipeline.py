"""Config section ``pipeline``: the end-to-end run and where its results go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Step = Literal["generate", "prepare", "train", "sgd", "kmeans", "evaluate", "report"]
ALL_STEPS: tuple[Step, ...] = (
    "generate",
    "prepare",
    "train",
    "sgd",
    "kmeans",
    "evaluate",
    "report",
)


@dataclass(frozen=True)
class PipelineConfig:
    """One run: raw data to a trained, evaluated model, the baselines and a report.

    Each run lives in ``<root>/<run id>/`` (``state.json``, ``pipeline.log``, one folder per
    step's output, ``report/``). Leave out ``generate`` to start from the user's data at
    ``prepare.input``. The k-means baseline clusters the training features into as many clusters
    as the task has classes unless ``kmeans_k`` is set.

    Attributes
    ----------
    root : str
        Run folders go under it, one per run id.
    steps : tuple[Step, ...]
        The steps to run, in order; leave out generate to start from prepare.input.
    kmeans_k : int | None
        k of the k-means step (default: as many clusters as the task has classes, at least 2).
    compare_mllib : bool
        MLlib reference runs for the report (LogisticRegression, KMeans cost per iteration).
    mllib_cost_iterations : int
        Lloyd iterations MLlib is re-run for, to plot its cost per iteration (one fit each).
    """

    root: str = "runs/pipeline"
    steps: tuple[Step, ...] = ALL_STEPS
    kmeans_k: int | None = field(default=None, metadata={"min": 1})
    # MLlib reference runs for the report (LogisticRegression, KMeans cost per iteration)
    compare_mllib: bool = True
    # Lloyd iterations MLlib is re-run for, to plot its cost per iteration (one fit each)
    mllib_cost_iterations: int = field(default=8, metadata={"min": 1, "max": 50})
