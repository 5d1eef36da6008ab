"""Distributed k-means: k-means|| initialisation and Lloyd iterations over cached numpy blocks.

Initialisation follows Bahmani et al. (2012): one centre drawn uniformly, then
``init_rounds`` rounds in which every partition samples each of its points with probability
``min(1, l * d^2(x) / cost)`` (``l = oversampling * k``); the candidates are weighted by how
many points they are nearest to and reduced to ``k`` centres with weighted k-means++ on the
driver. Each Lloyd iteration is one Spark job: the map assigns a block's points to their
nearest centre (one matrix product) and returns per-centre sums and counts, the cost and the
block's farthest points; a tree reduction merges them. A cluster that ends up empty is moved to
the farthest point not already used. Random draws are keyed by (seed, partition, round), so
results do not depend on scheduling or task retries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.baselines import kmeans_ops as ops
from sparkdl.baselines.blocks import Block, plan_blocks
from sparkdl.baselines.common import dataset_card, maybe_fail
from sparkdl.baselines.engine import Engine, run_with_retries
from sparkdl.config.baselines import BlockFaultConfig, KMeansConfig
from sparkdl.errors import BadInputError
from sparkdl.files import write_json, write_npz
from sparkdl.lock import output_lock

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass
class KMeansResult:
    """Outcome of :func:`run_kmeans`."""

    centers: Any
    init_centers: Any
    costs: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    empty_clusters: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    partitions: int = 0
    init_s: float = 0.0
    iterations_s: float = 0.0
    wall_s: float = 0.0
    output: str = ""


def _row(block: Block, arg: tuple[int, int]) -> Any:
    part, row = arg
    return block.x[row].astype(np.float64) if block.part == part else None


def _first(a: Any, b: Any) -> Any:
    return a if a is not None else b


def _cost(block: Block, centers: Any) -> float:
    return float(ops.assign(block.x, centers)[1].sum(dtype=np.float64))


def _add(a: Any, b: Any) -> Any:
    return a + b


def _sample(block: Block, arg: tuple[Any, float, float, int, int]) -> Any:
    candidates, cost, ell, seed, rnd = arg
    _, dist = ops.assign(block.x, candidates)
    rng = np.random.default_rng([seed, block.part, rnd])
    p = np.minimum(1.0, ell * dist / cost) if cost > 0 else np.zeros(len(dist))
    return block.x[rng.random(len(dist)) < p].astype(np.float64)


def _concat(a: Any, b: Any) -> Any:
    return np.concatenate([a, b])


def _counts(block: Block, candidates: Any) -> Any:
    return np.bincount(ops.assign(block.x, candidates)[0], minlength=len(candidates))


def _lloyd(block: Block, arg: tuple[Any, BlockFaultConfig, int]) -> dict[str, Any]:
    centers, fault, iteration = arg
    maybe_fail(fault, partition=block.part, iteration=iteration)
    return ops.lloyd_sums(block.x, centers)


def _far(block: Block, arg: tuple[Any, int]) -> dict[str, Any]:
    centers, m = arg
    return ops.farthest(block.x, centers, m)


def _table(block: Block, arg: tuple[Any, int]) -> tuple[Any, float]:
    centers, classes = arg
    idx, dist = ops.assign(block.x, centers)
    return ops.contingency(idx, block.y.astype(np.int64), len(centers), classes), float(dist.sum())


def _pair_add(a: tuple[Any, float], b: tuple[Any, float]) -> tuple[Any, float]:
    return a[0] + b[0], a[1] + b[1]


def kmeans_parallel_init(engine: Engine, *, cfg: KMeansConfig, sizes: dict[int, int]) -> Any:
    """k-means|| (Bahmani et al. 2012) followed by weighted k-means++ on the candidates.

    ``sizes`` holds each partition's rows (from the block plan).
    """
    k, seed = cfg.k, cfg.seed
    # First centre: a uniformly random row, drawn without collecting: pick a partition by size.
    rng = np.random.default_rng([seed, 1 << 20])
    parts = sorted(sizes)
    weights = np.array([sizes[p] for p in parts], dtype=np.float64)
    part = parts[rng.choice(len(parts), p=weights / weights.sum())]
    row = int(rng.integers(sizes[part]))
    candidates = np.asarray([engine.map_reduce(_row, (part, row), _first)])
    ell = cfg.oversampling * k
    for rnd in range(cfg.init_rounds):
        cost = engine.map_reduce(_cost, candidates, _add)
        picked = engine.map_reduce(_sample, (candidates, cost, ell, seed, rnd), _concat)
        candidates = np.concatenate([candidates, picked])
        logger.info("k-means|| round %d: %d candidates (cost %.6g)", rnd, len(candidates), cost)
    counts = engine.map_reduce(_counts, candidates, _add)
    return ops.kmeans_pp(candidates, counts, k, np.random.default_rng([seed, 1 << 21]))


def lloyd(
    engine: Engine, centers: Any, *, cfg: KMeansConfig
) -> tuple[Any, list[float], int, bool, int]:
    """Lloyd iterations from ``centers``: returns centres, cost per iteration, iterations run,
    whether it converged (no centre moved more than ``tol``) and empty clusters re-seeded."""
    costs: list[float] = []
    empty_total = 0
    converged = False
    it = 0
    for it in range(1, cfg.max_iter + 1):
        total = engine.map_reduce(_lloyd, (centers, cfg.fault, it - 1), ops.merge_sums)
        empty = int(np.sum(total["counts"] == 0))
        far = engine.map_reduce(_far, (centers, empty), ops.merge_far) if empty else None
        new = ops.update_centers(centers, total, far)
        empty_total += empty
        costs.append(total["cost"])
        shift = float(np.sqrt(((new - centers) ** 2).sum(axis=1)).max())
        centers = new
        logger.debug(
            "Lloyd iteration %d: cost %.6g, largest centre shift %.3g", it, total["cost"], shift
        )
        if shift <= cfg.tol and empty == 0:
            converged = True
            break
    return centers, costs, it, converged, empty_total


def cluster_metrics(engine: Engine, centers: Any, *, classes: int | None) -> dict[str, float]:
    """Final cost, and ARI and NMI against the labels from a distributed contingency table."""
    if classes is None:
        return {"cost": engine.map_reduce(_cost, centers, _add)}
    counts, cost = engine.map_reduce(_table, (centers, classes), _pair_add)
    return {
        "cost": cost,
        "ari": ops.adjusted_rand_index(counts),
        "nmi": ops.normalized_mutual_info(counts),
    }


def _cluster(
    engine: Engine,
    *,
    cfg: KMeansConfig,
    init_centers: Any | None,
    classes: int | None,
    sizes: dict[int, int],
) -> KMeansResult:
    t0 = time.perf_counter()
    if init_centers is None:
        init = kmeans_parallel_init(engine, cfg=cfg, sizes=sizes)
    else:
        init = init_centers
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    centers, costs, iterations, converged, empty = lloyd(engine, init, cfg=cfg)
    iterations_s = time.perf_counter() - t0
    return KMeansResult(
        centers=centers,
        init_centers=init,
        costs=costs,
        iterations=iterations,
        converged=converged,
        empty_clusters=empty,
        metrics=cluster_metrics(engine, centers, classes=classes),
        init_s=init_s,
        iterations_s=iterations_s,
    )


def run_kmeans(
    spark: SparkSession, *, cfg: KMeansConfig, init_centers: Any | None = None
) -> KMeansResult:
    """Cluster one split of a prepared dataset; write ``model.npz``, ``model.json`` and
    ``metrics.json`` to ``cfg.output``.

    Parameters
    ----------
    spark : SparkSession
        The session.
    cfg : KMeansConfig
        The ``kmeans`` config section.
    init_centers : array, optional
        Start Lloyd from these centres instead of k-means|| (for comparisons).

    Examples
    --------
    >>> r = run_kmeans(spark, cfg=KMeansConfig(dataset="data/prepared/blobs", k=4))  # doctest: +SKIP
    >>> r.metrics["ari"]  # doctest: +SKIP
    0.98
    """
    with output_lock(Path(cfg.output).resolve(), what="kmeans.output"):
        return _run_kmeans_locked(spark, cfg=cfg, init_centers=init_centers)


def _run_kmeans_locked(
    spark: SparkSession, *, cfg: KMeansConfig, init_centers: Any | None
) -> KMeansResult:
    """:func:`run_kmeans` with ``kmeans.output`` locked (one writer per output folder)."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.launch.preflight import settled_slots

    start = time.perf_counter()
    ds = open_dataset(spark, cfg.dataset)
    partitions = cfg.partitions or settled_slots(spark)
    plan = plan_blocks(ds, cfg.split, partitions=partitions)
    if plan.rows < cfg.k:
        raise BadInputError(
            f"kmeans.k={cfg.k} but {cfg.dataset} split {cfg.split!r} has {plan.rows} rows; "
            "lower kmeans.k"
        )
    init = None
    if init_centers is not None:
        init = np.asarray(init_centers, dtype=np.float64)
        if init.shape != (cfg.k, plan.dim):
            raise BadInputError(
                f"initial centres have shape {init.shape}, expected ({cfg.k}, {plan.dim})"
            )
    classes = ds.num_classes if ds.task == "classification" else None
    result = run_with_retries(
        spark,
        plan,
        kind=cfg.engine,
        max_attempts=cfg.max_attempts,
        algorithm=lambda engine: _cluster(
            engine, cfg=cfg, init_centers=init, classes=classes, sizes=plan.part_rows
        ),
    )
    result.rows = plan.rows
    result.partitions = partitions
    result.wall_s = time.perf_counter() - start
    result.output = str(Path(cfg.output).resolve())
    metrics = result.metrics
    iterations, converged, iterations_s = result.iterations, result.converged, result.iterations_s
    logger.info(
        "k-means k=%d: %d iterations (%s), cost %.6g, %.3f s per iteration",
        cfg.k,
        iterations,
        "converged" if converged else "max_iter reached",
        metrics["cost"],
        iterations_s / max(iterations, 1),
    )
    _write(result, cfg=cfg, dataset=ds)
    return result


def _write(result: KMeansResult, *, cfg: KMeansConfig, dataset: Any) -> None:
    from sparkdl.config.loader import to_dict

    out = Path(result.output)
    write_npz(out / "model.npz", centers=result.centers, init_centers=result.init_centers)
    write_json(
        out / "model.json",
        {
            "format": "sparkdl-kmeans/1",
            "k": cfg.k,
            "dim": int(result.centers.shape[1]),
            **dataset_card(dataset),
        },
    )
    write_json(
        out / "metrics.json",
        {
            "algorithm": "kmeans",
            "config": to_dict(cfg),
            "cost_per_iteration": result.costs,
            "iterations": result.iterations,
            "converged": result.converged,
            "empty_clusters_reseeded": result.empty_clusters,
            "metrics": result.metrics,
            "rows": result.rows,
            "partitions": result.partitions,
            "engine": cfg.engine,
            "init_s": result.init_s,
            "iterations_s": result.iterations_s,
            "seconds_per_iteration": result.iterations_s / max(result.iterations, 1),
            "wall_s": result.wall_s,
        },
    )
