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

``kmeans.n_init`` initialisations share every pass, and race (:mod:`sparkdl.baselines.lloyd`);
the lowest final cost is kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.baselines import kmeans_ops as ops
from sparkdl.baselines.blocks import Block, plan_blocks
from sparkdl.baselines.common import dataset_card
from sparkdl.baselines.engine import Engine, run_with_retries
from sparkdl.baselines.lloyd import LloydRun, lloyd
from sparkdl.config.baselines import KMeansConfig
from sparkdl.errors import BadInputError
from sparkdl.files import json_bytes, npz_bytes
from sparkdl.lock import output_lock
from sparkdl.store import Store
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore

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
    # initialisations run, the one kept (lowest final cost) and each one's final cost
    n_init: int = 1
    best_init: int = 0
    final_costs: list[float] = field(default_factory=list)
    # Lloyd passes over the data (every initialisation's iterations share them) and, per
    # initialisation, the pass after which it lost the race (0: it did not)
    passes: int = 0
    raced_out: list[int] = field(default_factory=list)


def _key(seed: int, run: int, *rest: int) -> list[int]:
    """Random key of initialisation ``run``; run 0 draws what a single initialisation drew."""
    return [seed, *rest] if run == 0 else [seed, *rest, run]


def _rows(block: Block, picks: list[tuple[int, int]]) -> list[Any]:
    return [block.x[row].astype(np.float64) if block.part == part else None for part, row in picks]


def _first_each(a: list[Any], b: list[Any]) -> list[Any]:
    return [x if x is not None else y for x, y in zip(a, b, strict=True)]


def _add(a: Any, b: Any) -> Any:
    return a + b


def _add_each(a: list[Any], b: list[Any]) -> list[Any]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _concat_each(a: list[Any], b: list[Any]) -> list[Any]:
    return [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]


def _costs(block: Block, sets: list[Any]) -> Any:
    return ops.assign_runs(block.x, sets)[1].sum(axis=0, dtype=np.float64)


def _sample(block: Block, arg: tuple[list[Any], Any, float, int, int]) -> list[Any]:
    sets, costs, ell, seed, rnd = arg
    _, dist = ops.assign_runs(block.x, sets)
    picked = []
    for run, cost in enumerate(costs):
        rng = np.random.default_rng(_key(seed, run, block.part, rnd))
        d = dist[:, run]
        p = np.minimum(1.0, ell * d / cost) if cost > 0 else np.zeros(len(d))
        picked.append(block.x[rng.random(len(d)) < p].astype(np.float64))
    return picked


def _counts(block: Block, sets: list[Any]) -> list[Any]:
    idx, _ = ops.assign_runs(block.x, sets)
    return [np.bincount(idx[:, r], minlength=len(c)) for r, c in enumerate(sets)]


def _final(block: Block, arg: tuple[list[Any], int | None]) -> tuple[Any, list[Any]]:
    sets, classes = arg
    idx, dist = ops.assign_runs(block.x, sets)
    costs = dist.sum(axis=0, dtype=np.float64)
    if classes is None:
        return costs, []
    labels = block.y.astype(np.int64)
    return costs, [ops.contingency(idx[:, r], labels, len(c), classes) for r, c in enumerate(sets)]


def _merge_final(a: tuple[Any, list[Any]], b: tuple[Any, list[Any]]) -> tuple[Any, list[Any]]:
    return a[0] + b[0], _add_each(a[1], b[1])


def kmeans_parallel_init(
    engine: Engine, *, cfg: KMeansConfig, sizes: dict[int, int], runs: int = 1
) -> list[Any]:
    """``runs`` k-means|| initialisations (Bahmani et al. 2012), each finished with weighted
    k-means++ on its candidates; returns one ``[k, dim]`` array per run.

    The runs share every pass over the data: each round scores every row against all runs'
    candidates in one scan. ``sizes`` holds each partition's rows (from the block plan).
    """
    k, seed = cfg.k, cfg.seed
    parts = sorted(sizes)
    weights = np.array([sizes[p] for p in parts], dtype=np.float64)
    picks = []
    for run in range(runs):
        # First centre: a uniformly random row, drawn without collecting: a partition by size.
        rng = np.random.default_rng(_key(seed, run, 1 << 20))
        part = parts[rng.choice(len(parts), p=weights / weights.sum())]
        picks.append((part, int(rng.integers(sizes[part]))))
    sets = [np.asarray([r]) for r in engine.map_reduce(_rows, picks, _first_each)]
    ell = cfg.oversampling * k
    for rnd in range(cfg.init_rounds):
        costs = engine.map_reduce(_costs, sets, _add)
        picked = engine.map_reduce(_sample, (sets, costs, ell, seed, rnd), _concat_each)
        sets = [np.concatenate([c, p]) for c, p in zip(sets, picked, strict=True)]
        logger.info(
            "k-means|| round %d: %s candidates (cost %s)",
            rnd,
            [len(c) for c in sets],
            ", ".join(f"{c:.6g}" for c in costs),
        )
    counts = engine.map_reduce(_counts, sets, _add_each)
    return [
        ops.kmeans_pp(c, w, k, np.random.default_rng(_key(seed, run, 1 << 21)))
        for run, (c, w) in enumerate(zip(sets, counts, strict=True))
    ]


def best_run(
    engine: Engine, runs: list[LloydRun], *, classes: int | None
) -> tuple[int, list[float], dict[str, float]]:
    """The run with the lowest final cost (the first on a tie), every run's final cost, and
    the best run's metrics: cost, and ARI and NMI against the labels (one pass for all)."""
    costs, tables = engine.map_reduce(_final, ([r.centers for r in runs], classes), _merge_final)
    best = int(np.argmin(costs))
    metrics = {"cost": float(costs[best])}
    if classes is not None:
        metrics["ari"] = ops.adjusted_rand_index(tables[best])
        metrics["nmi"] = ops.normalized_mutual_info(tables[best])
    return best, [float(c) for c in costs], metrics


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
        inits = kmeans_parallel_init(engine, cfg=cfg, sizes=sizes, runs=cfg.n_init)
    else:
        inits = [init_centers]  # given centres: one run (scikit-learn does the same)
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs, passes = lloyd(engine, inits, cfg=cfg)
    iterations_s = time.perf_counter() - t0
    best, final_costs, metrics = best_run(engine, runs, classes=classes)
    run = runs[best]
    return KMeansResult(
        centers=run.centers,
        init_centers=inits[best],
        costs=run.costs,
        iterations=run.iterations,
        converged=run.converged,
        empty_clusters=run.empty,
        metrics=metrics,
        init_s=init_s,
        iterations_s=iterations_s,
        n_init=len(inits),
        best_init=best,
        final_costs=final_costs,
        passes=passes,
        raced_out=[r.raced_out for r in runs],
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
    with output_lock(cfg.output, what="kmeans.output", spark=spark):
        return _run_kmeans_locked(spark, cfg=cfg, init_centers=init_centers)


def _run_kmeans_locked(
    spark: SparkSession, *, cfg: KMeansConfig, init_centers: Any | None
) -> KMeansResult:
    """:func:`run_kmeans` with ``kmeans.output`` locked (one writer per output folder)."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.launch.preflight import settled_slots

    start = time.perf_counter()
    ds = open_dataset(spark, cfg.dataset)
    # the driver writes the model; every node must reach it (refused here, before any stage)
    out = HadoopStore(spark, check_output(spark, cfg.output, key="kmeans.output"))
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
    result.output = out.uri
    metrics = result.metrics
    logger.info(
        "k-means k=%d: best of %d initialisations (#%d, final costs %s; %d lost the race): "
        "%d iterations (%s), cost %.6g, %.3f s per Lloyd pass",
        cfg.k,
        result.n_init,
        result.best_init,
        ", ".join(f"{c:.6g}" for c in result.final_costs),
        sum(1 for r in result.raced_out if r),
        result.iterations,
        "converged" if result.converged else "max_iter reached",
        metrics["cost"],
        result.iterations_s / max(result.passes, 1),
    )
    _write(result, cfg=cfg, dataset=ds, out=out)
    return result


def _write(result: KMeansResult, *, cfg: KMeansConfig, dataset: Any, out: Store) -> None:
    from sparkdl.config.loader import to_dict

    out.write_bytes(
        "model.npz", npz_bytes(centers=result.centers, init_centers=result.init_centers)
    )
    out.write_bytes(
        "model.json",
        json_bytes(
            {
                "format": "sparkdl-kmeans/1",
                "k": cfg.k,
                "dim": int(result.centers.shape[1]),
                **dataset_card(dataset),
            }
        ),
    )
    out.write_bytes(
        "metrics.json",
        json_bytes(
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
                "n_init": result.n_init,
                "best_init": result.best_init,
                "final_cost_per_init": result.final_costs,
                "lloyd_passes": result.passes,
                "raced_out_after_pass_per_init": result.raced_out,
                "iterations_s": result.iterations_s,
                # a pass serves every initialisation still iterating
                "seconds_per_iteration": result.iterations_s / max(result.passes, 1),
                "wall_s": result.wall_s,
            }
        ),
    )
