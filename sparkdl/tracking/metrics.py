"""A step's ``metrics.json`` as MLflow metrics: per-epoch series and final values.

Every step that measures something writes a ``metrics.json`` on the driver (training, the
ParallelSGD and k-means baselines, evaluation); this module reads their shared shapes, so a
new step with the same shapes is tracked without a line here:

- ``history``: one entry per epoch, logged with ``step=epoch`` (``epoch`` and ``attempt``
  are the coordinates, not metrics);
- ``cost_per_iteration``: the k-means cost, logged as ``cost`` with ``step=iteration``;
- ``test`` and ``metrics``: final values (``test_<name>`` and ``<name>``);
- top-level numbers (``wall_s``, ``samples_per_s``, ``rows``): final values.

A final value under the name of a series (ParallelSGD scores the test split every epoch, and
k-means reports its final cost) is left out: the series' last point is that value.

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
    >>> doc = {"cost_per_iteration": [9.0, 4.0], "metrics": {"cost": 4.0, "ari": 0.5}}
    >>> [(p.key, p.value, p.step) for p in metric_points(doc)]
    [('cost', 9.0, 0), ('cost', 4.0, 1), ('ari', 0.5, 0)]
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
    finals: list[Point] = []
    if isinstance(doc.get("test"), Mapping):
        finals += _scalars(doc["test"], "test_")
    if isinstance(doc.get("metrics"), Mapping):
        finals += _scalars(doc["metrics"])
    finals += [p for p in _scalars(doc) if p.key not in _COORDINATES]
    # a final value of a per-epoch series is its last point already (at the right step)
    series = {p.key for p in points}
    return points + [p for p in finals if p.key not in series]


def reference_points(doc: Mapping[str, Any]) -> list[Point]:
    """MLlib's numbers in a ``compare.json``: its first MLlib row's fields as ``mllib_<name>``
    and its cost per iteration, when measured, as ``mllib_iteration_cost`` at steps 1, 2, ...

    Examples
    --------
    >>> doc = {"rows": [{"method": "ours", "cost": 3.0}, {"method": "MLlib KMeans", "cost": 2.5}],
    ...        "mllib_cost_per_iteration": [9.0, 4.0]}
    >>> [(p.key, p.value, p.step) for p in reference_points(doc)]
    [('mllib_cost', 2.5, 0), ('mllib_iteration_cost', 9.0, 1), ('mllib_iteration_cost', 4.0, 2)]
    """
    from sparkdl.baselines.compare import reference_row

    row = reference_row(dict(doc), "MLlib") or {}
    numbers = {k: _number(v) for k, v in row.items()}
    points = [Point(f"mllib_{k}", v) for k, v in numbers.items() if v is not None]
    curve = doc.get("mllib_cost_per_iteration") or []
    return points + [
        Point("mllib_iteration_cost", float(c), step=i) for i, c in enumerate(curve, 1)
    ]
