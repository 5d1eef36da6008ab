"""A step's ``metrics.json`` as MLflow metrics: per-epoch series and final values.

Every step that measures something writes a ``metrics.json`` on the driver (training, the
ParallelSGD and k-means baselines, evaluation); this module reads their shared shapes, so a
new step with the same shapes is tracked without a line here:

- ``history``: one entry per epoch, logged with ``step=epoch`` (``epoch`` and ``attempt``
  are the coordinates, not metrics);
- ``cost_per_iteration``: the k-means cost, logged as ``cost`` with ``step=iteration``;
- ``test`` and ``metrics``: final values (``test_<name>`` and ``<name>``);
- top-level numbers (``wall_s``, ``samples_per_s``, ``rows``): final values.

Booleans, strings, nested lists and non-finite numbers are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_COORDINATES = frozenset({"epoch", "attempt", "epochs"})


@dataclass(frozen=True)
class Point:
    """One metric value at one step."""

    key: str
    value: float
    step: int = 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _scalars(doc: Mapping[str, Any], prefix: str = "") -> list[Point]:
    found = []
    for key, raw in doc.items():
        value = _number(raw)
        if value is not None:
            found.append(Point(f"{prefix}{key}", value))
    return found


def metric_points(doc: Mapping[str, Any]) -> list[Point]:
    """The MLflow metrics of one step's ``metrics.json`` document (see the module docstring).

    Examples
    --------
    >>> doc = {"history": [{"epoch": 0.0, "loss": 0.7}, {"epoch": 1.0, "loss": 0.5}],
    ...        "test": {"accuracy": 0.9}, "wall_s": 12.5, "weights_identical": True}
    >>> [(p.key, p.value, p.step) for p in metric_points(doc)]
    [('loss', 0.7, 0), ('loss', 0.5, 1), ('test_accuracy', 0.9, 0), ('wall_s', 12.5, 0)]
    >>> [(p.key, p.step) for p in metric_points({"cost_per_iteration": [9.0, 4.0]})]
    [('cost', 0), ('cost', 1)]
    """
    points: list[Point] = []
    for entry in doc.get("history") or []:
        if not isinstance(entry, Mapping):
            continue
        epoch = _number(entry.get("epoch"))
        step = int(epoch) if epoch is not None else len(points)
        points += [
            Point(p.key, p.value, step) for p in _scalars(entry) if p.key not in _COORDINATES
        ]
    for i, cost in enumerate(doc.get("cost_per_iteration") or []):
        value = _number(cost)
        if value is not None:
            points.append(Point("cost", value, i))
    if isinstance(doc.get("test"), Mapping):
        points += _scalars(doc["test"], "test_")
    if isinstance(doc.get("metrics"), Mapping):
        points += _scalars(doc["metrics"])
    points += [p for p in _scalars(doc) if p.key not in _COORDINATES]
    return points
