"""ParallelSGD (Zinkevich, Weimer, Smola and Li, 2010) over cached numpy blocks.

Every partition of the training split runs vectorised mini-batch SGD on its own rows, starting
from the same weights, and the driver averages the partitions' weights (weighted by their row
counts) with a tree reduction. ``oneshot`` does this once after all epochs; ``mixing``
(iterative parameter mixing) after every epoch, broadcasting the average as the next epoch's
start. Random streams are keyed by (seed, partition, epoch), so results do not depend on which
executor or attempt ran a task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.baselines import linear
from sparkdl.baselines.blocks import Block, load_blocks
from sparkdl.baselines.common import maybe_fail, tree_depth, write_json, write_npz
from sparkdl.config.baselines import SGDConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass
class SGDResult:
    """Outcome of :func:`run_parallel_sgd`."""

    kind: str
    weights: linear.Weights
    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    wall_s: float = 0.0
    output: str = ""


Partial = tuple[Any, Any, float, float, dict[str, dict[str, float]]]


def _partition_round(
    kind: str, start: linear.Weights, block: Block, *, cfg: SGDConfig, epochs: range
) -> Partial:
    """One task: score ``start`` on the block's held-out rows, then run SGD ``epochs`` on its
    training rows. Returns ``(n*W, n*b, n, summed loss of the last epoch, held-out sums)``."""
    sums = {split: linear.score_sums(kind, start, x, y) for split, (x, y) in block.held_out.items()}
    w = start.copy()
    loss = 0.0
    for epoch in epochs:
        maybe_fail(cfg.fault, partition=block.part, iteration=epoch)
        loss = linear.sgd_epoch(
            kind,
            w,
            block.x,
            block.y,
            lr=cfg.learning_rate * cfg.lr_decay**epoch,
            l2=cfg.l2,
            batch_size=cfg.batch_size,
            rng=np.random.default_rng([cfg.seed, block.part, epoch]),
        )
    n = float(len(block.y))
    return w.W * n, w.b * n, n, loss, sums


def _merge(a: Partial, b: Partial) -> Partial:
    sums = {k: dict(v) for k, v in a[4].items()}
    for split, values in b[4].items():
        into = sums.setdefault(split, {})
        for key, value in values.items():
            into[key] = into.get(key, 0.0) + value
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], sums


def run_parallel_sgd(spark: SparkSession, *, cfg: SGDConfig) -> SGDResult:
    """Train a linear model with ParallelSGD and write ``model.npz``, ``model.json`` and
    ``metrics.json`` to ``cfg.output``.

    Examples
    --------
    >>> r = run_parallel_sgd(spark, cfg=SGDConfig(dataset="data/prepared/x"))  # doctest: +SKIP
    >>> r.test["accuracy"]  # doctest: +SKIP
    0.9012
    """
    from sparkdl.data.dataset import open_dataset

    start = time.perf_counter()
    ds = open_dataset(spark, cfg.dataset)
    kind = linear.resolve_kind(cfg.model, task=ds.task, num_classes=ds.num_classes)
    held_out = [s for s in ("validation", "test") if ds.manifest["splits"].get(s, {}).get("rows")]
    blocks = load_blocks(spark, ds, "train", partitions=cfg.partitions, held_out=held_out)
    logger.info(
        "ParallelSGD (%s, %s) on %d rows in %d partitions, evaluated on %s",
        kind,
        cfg.mode,
        blocks.rows,
        cfg.partitions,
        blocks.held_out_rows,
    )
    weights = linear.Weights.zeros(ds.feature_dim, linear.outputs(kind, ds.num_classes))
    history: list[dict[str, float]] = []
    if cfg.mode == "mixing":
        rounds = [range(e, e + 1) for e in range(cfg.epochs)]
    else:
        rounds = [range(cfg.epochs)]
    # One Spark job per round: it scores the previous round's average on the held-out rows
    # and trains the next round; a last job only scores the final model.
    try:
        for i, epochs in enumerate([*rounds, range(0)]):
            bc = spark.sparkContext.broadcast(weights)
            wn, bn, n, loss, sums = blocks.rdd.map(
                lambda b, bc=bc, epochs=epochs: _partition_round(
                    kind, bc.value, b, cfg=cfg, epochs=epochs
                )
            ).treeReduce(_merge, depth=tree_depth(blocks.partitions))
            bc.unpersist()
            if i > 0:
                for split, total in sums.items():
                    metrics = linear.finish_metrics(kind, total)
                    history[-1].update({f"{split}_{k}": v for k, v in metrics.items()})
                history[-1]["elapsed_s"] = time.perf_counter() - start
                logger.info(
                    "ParallelSGD after epoch %d: %s", history[-1]["epoch"], _fmt(history[-1])
                )
            if len(epochs):
                weights = linear.Weights(wn / n, bn / n)
                history.append({"epoch": float(epochs[-1]), "train_loss": loss / n})
    finally:
        blocks.unpersist()
    test = {k[len("test_") :]: v for k, v in history[-1].items() if k.startswith("test_")}
    result = SGDResult(
        kind=kind,
        weights=weights,
        history=history,
        test=test,
        rows=blocks.rows,
        wall_s=time.perf_counter() - start,
        output=str(Path(cfg.output).resolve()),
    )
    _write(result, cfg=cfg, dataset=ds)
    return result


def _fmt(entry: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "elapsed_s"))


def _write(result: SGDResult, *, cfg: SGDConfig, dataset: Any) -> None:
    from sparkdl.config.loader import to_dict

    out = Path(result.output)
    write_npz(out / "model.npz", W=result.weights.W, b=result.weights.b)
    write_json(
        out / "model.json",
        {
            "format": "sparkdl-linear/1",
            "kind": result.kind,
            "dim": int(result.weights.W.shape[0]),
            "label_values": dataset.manifest.get("label_values"),
            "feature_names": dataset.feature_names,
            "dataset": dataset.path,
            "dataset_version": dataset.manifest.get("version"),
            "featurizer": dataset.featurizer_path,
        },
    )
    write_json(
        out / "metrics.json",
        {
            "algorithm": "parallel_sgd",
            "config": to_dict(cfg),
            "kind": result.kind,
            "history": result.history,
            "test": result.test,
            "rows": result.rows,
            "partitions": cfg.partitions,
            "wall_s": result.wall_s,
        },
    )
