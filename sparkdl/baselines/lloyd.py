"""Lloyd iterations from several initialisations at once, with restarts that race.

Every pass over a block scores its rows against the centres of every run still iterating (one
scan), so ``n`` initialisations cost one pass each instead of ``n`` passes. Runs race by
successive halving (Jamieson and Talwalkar 2016): after ``kmeans.race_passes`` passes the
costlier half stops where it is, again after twice as many passes, and so on until one run is
left; Lloyd's cost only falls, and a start that is clearly behind after a few passes rarely
catches up, so the race keeps the best start at a fraction of the passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sparkdl.baselines import kmeans_ops as ops
from sparkdl.baselines.blocks import Block
from sparkdl.baselines.common import maybe_fail
from sparkdl.baselines.engine import Engine
from sparkdl.config.baselines import BlockFaultConfig, KMeansConfig

logger = logging.getLogger(__name__)


def _lloyd(block: Block, arg: tuple[Any, BlockFaultConfig, int]) -> dict[str, Any]:
    centers, fault, iteration = arg
    maybe_fail(fault, partition=block.part, iteration=iteration)
    return ops.lloyd_sums_runs(block.x, centers)


def _far(block: Block, arg: tuple[list[Any], list[int]]) -> list[Any]:
    sets, wanted = arg
    return ops.farthest_runs(block.x, sets, wanted)


def _merge_far_each(a: list[Any], b: list[Any]) -> list[Any]:
    return [None if x is None else ops.merge_far(x, y) for x, y in zip(a, b, strict=True)]


@dataclass
class LloydRun:
    """One initialisation's Lloyd iterations: centres, cost per iteration, whether it
    converged (no centre moved more than ``tol``), the empty clusters re-seeded, and the pass
    after which it lost the race (0: it did not)."""

    centers: Any
    costs: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    empty: int = 0
    raced_out: int = 0


def race_rung(passes: int, race_passes: int) -> bool:
    """Whether the race halves its field after ``passes`` passes: after ``race_passes``, then
    after every doubling of it (successive halving, Jamieson and Talwalkar 2016).

    Examples
    --------
    >>> [p for p in range(1, 30) if race_rung(p, 3)]
    [3, 6, 12, 24]
    >>> race_rung(3, 0)
    False
    """
    if race_passes <= 0 or passes % race_passes:
        return False
    rung = passes // race_passes
    return rung & (rung - 1) == 0


def halve(runs: list[LloydRun], *, passes: int) -> None:
    """Stop the costlier half of the runs still in the race (those with no ``raced_out``),
    ranked by their latest cost; the cheaper half (rounded up) races on."""
    field_ = [r for r in runs if not r.raced_out]
    if len(field_) < 2:
        return
    ranked = sorted(field_, key=lambda r: r.costs[-1])  # stable: the earlier run wins a tie
    for run in ranked[(len(ranked) + 1) // 2 :]:
        run.raced_out = passes


def lloyd(engine: Engine, inits: list[Any], *, cfg: KMeansConfig) -> tuple[list[LloydRun], int]:
    """Lloyd iterations from every initialisation at once; returns the runs and the passes.

    One pass over each block gives the sums of every run still moving (one scan against all
    their centres); a run leaves the passes once it converged, or once it lost the race
    (``kmeans.race_passes``: at each rung the costlier half stops where it is).
    """
    runs = [LloydRun(centers=np.asarray(c, dtype=np.float64)) for c in inits]
    passes = 0
    for it in range(1, cfg.max_iter + 1):
        active = [r for r in runs if not r.converged and not r.raced_out]
        if not active:
            break
        passes = it
        stack = np.stack([r.centers for r in active])
        total = engine.map_reduce(_lloyd, (stack, cfg.fault, it - 1), ops.merge_sums)
        empties = [int(np.sum(c == 0)) for c in total["counts"]]
        far = (
            engine.map_reduce(_far, ([r.centers for r in active], empties), _merge_far_each)
            if any(empties)
            else [None] * len(active)
        )
        for i, run in enumerate(active):
            part = {"sums": total["sums"][i], "counts": total["counts"][i]}
            new = ops.update_centers(run.centers, part, far[i])
            shift = float(np.sqrt(((new - run.centers) ** 2).sum(axis=1)).max())
            run.centers, run.iterations = new, it
            run.costs.append(float(total["cost"][i]))
            run.empty += empties[i]
            run.converged = shift <= cfg.tol and empties[i] == 0
        logger.debug("Lloyd pass %d: %d runs, costs %s", it, len(active), total["cost"])
        if race_rung(it, cfg.race_passes):
            halve(runs, passes=it)
    return runs, passes
