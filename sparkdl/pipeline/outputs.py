"""What each pipeline step hands on: its one-line summary and where its results are.

A step returns a :class:`StepResult`; the run's state (:mod:`sparkdl.pipeline.state`, the one
module that writes and reads ``state.json``) records it, and later steps and the report read it
back from there, as the same record, instead of rebuilding paths. The records are versioned
with the state file's format (``sparkdl-pipeline-state/1``); their fields follow
:mod:`sparkdl.contract`'s rule (a field with a default may be absent, an unknown one is ignored).

Examples
--------
>>> StepResult(summary="report at r.md", output=ReportOutput(report="r.md")).output.report
'r.md'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerateOutput:
    """Where ``generate`` wrote the raw data."""

    path: str


@dataclass(frozen=True)
class PrepareOutput:
    """The dataset ``prepare`` published (or found published): root, version, rows per split."""

    dataset: str
    version: str
    splits: dict[str, int]


@dataclass(frozen=True)
class TrainOutput:
    """The exported model folder and the training ``metrics.json``."""

    model: str
    metrics: str


@dataclass(frozen=True)
class SgdOutput:
    """ParallelSGD's ``metrics.json`` and, when it ran, the comparison's ``compare.json``."""

    metrics: str
    compare: str | None = None


@dataclass(frozen=True)
class KmeansOutput:
    """k-means' ``metrics.json`` and, when it ran, the comparison's ``compare.json``."""

    metrics: str
    compare: str | None = None


@dataclass(frozen=True)
class EvaluateOutput:
    """The distributed evaluation's ``metrics.json``."""

    metrics: str


@dataclass(frozen=True)
class PredictOutput:
    """Where ``predict`` wrote its predictions, and how many rows."""

    predictions: str
    rows: int


@dataclass(frozen=True)
class CheckOutput:
    """Whether ``allreduce-check`` found every rank's result right."""

    ok: bool


@dataclass(frozen=True)
class ReportOutput:
    """The run report's Markdown file."""

    report: str


StepOutput = (
    GenerateOutput
    | PrepareOutput
    | TrainOutput
    | SgdOutput
    | KmeansOutput
    | EvaluateOutput
    | PredictOutput
    | CheckOutput
    | ReportOutput
)


@dataclass(frozen=True)
class StepResult:
    """What a step returns: the line shown for it, its output record, and whether the check it
    made held (``allreduce-check``; a failed one exits 1)."""

    summary: str
    output: StepOutput
    ok: bool = True
