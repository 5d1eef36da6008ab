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
from sparkdl.baselines.blocks import Block, Blocks, load_blocks
from sparkdl.baselines.common import maybe_fail, tree_depth, write_json, write_npz
from sparkdl.config.baselines import KMeansConfig

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
    init_s: float = 0.0
    iterations_s: float = 0.0
    wall_s: float = 0.0
    output: str = ""


def kmeans_parallel_init(blocks: Blocks, *, cfg: KMeansConfig) -> Any:
    """k-means|| (Bahmani et al. 2012) followed by weighted k-means++ on the candidates."""
    sc = blocks.rdd.context
    k, seed = cfg.k, cfg.seed
    depth = tree_depth(blocks.partitions)
    # First centre: a uniformly random row, drawn without collecting: pick a partition by size.
    sizes = dict(blocks.rdd.map(lambda b: (b.part, len(b.y))).collect())
    rng = np.random.default_rng([seed, 1 << 20])
    parts = sorted(sizes)
    weights = np.array([sizes[p] for p in parts], dtype=np.float64)
    part = parts[rng.choice(len(parts), p=weights / weights.sum())]
    row = int(rng.integers(sizes[part]))
    first = blocks.rdd.filter(lambda b: b.part == part).map(lambda b: b.x[row]).first()
    candidates = np.asarray([first], dtype=np.float64)
    ell = cfg.oversampling * k
    for rnd in range(cfg.init_rounds):
        bc = sc.broadcast(candidates)
        cost = blocks.rdd.map(lambda b, bc=bc: float(ops.assign(b.x, bc.value)[1].sum())).sum()

        def sample(b: Block, bc: Any = bc, cost: float = cost, rnd: int = rnd) -> Any:
            _, dist = ops.assign(b.x, bc.value)
            r = np.random.default_rng([seed, b.part, rnd])
            p = np.minimum(1.0, ell * dist / cost) if cost > 0 else np.zeros(len(dist))
            return b.x[r.random(len(dist)) < p].astype(np.float64)

        picked = blocks.rdd.map(sample).treeReduce(lambda a, c: np.concatenate([a, c]), depth=depth)
        bc.unpersist()
        candidates = np.concatenate([candidates, picked])
        logger.info("k-means|| round %d: %d candidates (cost %.6g)", rnd, len(candidates), cost)
    bc = sc.broadcast(candidates)
    counts = blocks.rdd.map(
        lambda b: np.bincount(ops.assign(b.x, bc.value)[0], minlength=len(bc.value))
    ).treeReduce(np.add, depth=depth)
    bc.unpersist()
    return ops.kmeans_pp(candidates, counts, k, np.random.default_rng([seed, 1 << 21]))


def lloyd(
    blocks: Blocks, centers: Any, *, cfg: KMeansConfig
) -> tuple[Any, list[float], int, bool, int]:
    """Lloyd iterations from ``centers``: returns centres, cost per iteration, iterations run,
    whether it converged (no centre moved more than ``tol``) and empty clusters re-seeded."""
    sc = blocks.rdd.context
    depth = tree_depth(blocks.partitions)
    costs: list[float] = []
    empty_total = 0
    converged = False
    far = cfg.k
    it = 0
    for it in range(1, cfg.max_iter + 1):
        bc = sc.broadcast(centers)

        def step(b: Block, bc: Any = bc, it: int = it) -> dict[str, Any]:
            maybe_fail(cfg.fault, partition=b.part, iteration=it - 1)
            return ops.lloyd_sums(b.x, bc.value, far=far)

        total = blocks.rdd.map(step).treeReduce(ops.merge_sums, depth=depth)
        bc.unpersist()
        new, empty = ops.update_centers(centers, total)
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


def cluster_metrics(blocks: Blocks, centers: Any, *, classes: int) -> dict[str, float]:
    """Final cost, and ARI and NMI against the labels, from a distributed contingency table."""
    bc = blocks.rdd.context.broadcast(centers)
    k = len(centers)

    def table(b: Block) -> tuple[Any, float]:
        idx, dist = ops.assign(b.x, bc.value)
        return ops.contingency(idx, b.y.astype(np.int64), k, classes), float(dist.sum())

    counts, cost = blocks.rdd.map(table).treeReduce(
        lambda a, c: (a[0] + c[0], a[1] + c[1]), depth=tree_depth(blocks.partitions)
    )
    bc.unpersist()
    return {
        "cost": cost,
        "ari": ops.adjusted_rand_index(counts),
        "nmi": ops.normalized_mutual_info(counts),
    }


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
    from sparkdl.data.dataset import open_dataset

    start = time.perf_counter()
    ds = open_dataset(spark, cfg.dataset)
    blocks = load_blocks(spark, ds, cfg.split, partitions=cfg.partitions)
    if blocks.rows < cfg.k:
        blocks.unpersist()
        raise ValueError(
            f"kmeans.k={cfg.k} but {cfg.dataset} split {cfg.split!r} has {blocks.rows} rows; "
            "lower kmeans.k"
        )
    try:
        t0 = time.perf_counter()
        if init_centers is None:
            init = kmeans_parallel_init(blocks, cfg=cfg)
        else:
            init = np.asarray(init_centers, dtype=np.float64)
            if init.shape != (cfg.k, blocks.dim):
                raise ValueError(
                    f"initial centres have shape {init.shape}, expected ({cfg.k}, {blocks.dim})"
                )
        init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        centers, costs, iterations, converged, empty = lloyd(blocks, init, cfg=cfg)
        iterations_s = time.perf_counter() - t0
        labelled = ds.task == "classification"
        if labelled:
            metrics = cluster_metrics(blocks, centers, classes=ds.num_classes)
        else:
            bc = spark.sparkContext.broadcast(centers)
            metrics = {
                "cost": blocks.rdd.map(lambda b: float(ops.assign(b.x, bc.value)[1].sum())).sum()
            }
    finally:
        blocks.unpersist()
    result = KMeansResult(
        centers=centers,
        init_centers=init,
        costs=costs,
        iterations=iterations,
        converged=converged,
        empty_clusters=empty,
        metrics=metrics,
        rows=blocks.rows,
        init_s=init_s,
        iterations_s=iterations_s,
        wall_s=time.perf_counter() - start,
        output=str(Path(cfg.output).resolve()),
    )
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
            "feature_names": dataset.feature_names,
            "dataset": dataset.path,
            "dataset_version": dataset.manifest.get("version"),
            "featurizer": dataset.featurizer_path,
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
            "init_s": result.init_s,
            "iterations_s": result.iterations_s,
            "seconds_per_iteration": result.iterations_s / max(result.iterations, 1),
            "wall_s": result.wall_s,
        },
    )
