"""ParallelSGD (Zinkevich, Weimer, Smola and Li, 2010) over numpy blocks.

Every partition of the training split runs vectorised mini-batch SGD on its own rows, starting
from the same weights, and the driver averages the partitions' weights (weighted by their row
counts). ``oneshot`` does this once after all epochs; ``mixing`` (iterative parameter mixing)
after every epoch, broadcasting the average as the next epoch's start. Random streams are keyed
by (seed, partition, epoch), so results do not depend on which executor or attempt ran a task.
Each round also scores the previous round's average on the held-out rows that ride along with
the block, so evaluation costs no extra pass or job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.baselines import linear
from sparkdl.baselines.blocks import Block, plan_blocks
from sparkdl.baselines.common import dataset_card, maybe_fail
from sparkdl.baselines.engine import Engine, run_with_retries
from sparkdl.config.baselines import SGDConfig
from sparkdl.files import json_bytes, npz_bytes
from sparkdl.lock import output_lock
from sparkdl.store import Store
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

Partial = tuple[Any, Any, float, float, dict[str, dict[str, float]]]


@dataclass
class SGDResult:
    """Outcome of :func:`run_parallel_sgd`."""

    kind: str
    weights: linear.Weights
    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    partitions: int = 0
    wall_s: float = 0.0
    output: str = ""


def partition_round(block: Block, arg: tuple[str, linear.Weights, SGDConfig, range]) -> Partial:
    """One task: score the start weights on the block's held-out rows, then run SGD epochs on
    its training rows. Returns ``(n*W, n*b, n, summed loss of the last epoch, held-out sums)``."""
    kind, start, cfg, epochs = arg
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


def merge_partials(a: Partial, b: Partial) -> Partial:
    """Add two partition results (weights times rows, rows, loss, held-out sums)."""
    sums = {k: dict(v) for k, v in a[4].items()}
    for split, values in b[4].items():
        into = sums.setdefault(split, {})
        for key, value in values.items():
            into[key] = into.get(key, 0.0) + value
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], sums


def _train(
    engine: Engine, *, kind: str, cfg: SGDConfig, dim: int, outputs: int, start: float
) -> tuple[linear.Weights, list[dict[str, float]]]:
    weights = linear.Weights.zeros(dim, outputs)
    history: list[dict[str, float]] = []
    if cfg.mode == "mixing":
        rounds = [range(e, e + 1) for e in range(cfg.epochs)]
    else:
        rounds = [range(cfg.epochs)]
    # Each call scores the previous round's average and trains the next round; the last call
    # only scores the final model.
    for i, epochs in enumerate([*rounds, range(0)]):
        wn, bn, n, loss, sums = engine.map_reduce(
            partition_round, (kind, weights, cfg, epochs), merge_partials
        )
        if i > 0:
            for split, total in sums.items():
                metrics = linear.finish_metrics(kind, total)
                history[-1].update({f"{split}_{k}": v for k, v in metrics.items()})
            history[-1]["elapsed_s"] = time.perf_counter() - start
            logger.info("ParallelSGD after epoch %d: %s", history[-1]["epoch"], _fmt(history[-1]))
        if len(epochs):
            weights = linear.Weights(wn / n, bn / n)
            history.append(
                {
                    "epoch": float(epochs[-1]),
                    "train_loss": loss / n,
                    # when this model existed; elapsed_s is when its scores were known
                    "trained_s": time.perf_counter() - start,
                }
            )
    return weights, history


def run_parallel_sgd(spark: SparkSession, *, cfg: SGDConfig) -> SGDResult:
    """Train a linear model with ParallelSGD and write ``model.npz``, ``model.json`` and
    ``metrics.json`` to ``cfg.output``.

    Examples
    --------
    >>> r = run_parallel_sgd(spark, cfg=SGDConfig(dataset="data/prepared/x"))  # doctest: +SKIP
    >>> r.test["accuracy"]  # doctest: +SKIP
    0.9012
    """
    with output_lock(cfg.output, what="sgd.output", spark=spark):
        return _run_sgd_locked(spark, cfg=cfg)


def _run_sgd_locked(spark: SparkSession, *, cfg: SGDConfig) -> SGDResult:
    """:func:`run_parallel_sgd` with ``sgd.output`` locked (one writer per output folder)."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.launch.preflight import settled_slots

    start = time.perf_counter()
    ds = open_dataset(spark, cfg.dataset)
    # the driver writes the model; every node must reach it (refused here, before any stage)
    out = HadoopStore(spark, check_output(spark, cfg.output, key="sgd.output"))
    kind = linear.resolve_kind(cfg.model, task=ds.task, num_classes=ds.num_classes)
    held_out = [s for s in ("validation", "test") if s in ds.manifest.splits and ds.rows(s)]
    partitions = cfg.partitions or settled_slots(spark)
    plan = plan_blocks(ds, "train", partitions=partitions, held_out=held_out)
    logger.info(
        "ParallelSGD (%s, %s, %s engine) on %d rows in %d partitions, evaluated on %s",
        kind,
        cfg.mode,
        cfg.engine,
        plan.rows,
        partitions,
        plan.held_out_rows,
    )
    weights, history = run_with_retries(
        spark,
        plan,
        kind=cfg.engine,
        max_attempts=cfg.max_attempts,
        algorithm=lambda engine: _train(
            engine,
            kind=kind,
            cfg=cfg,
            dim=ds.feature_dim,
            outputs=linear.outputs(kind, ds.num_classes),
            start=start,
        ),
    )
    test = {k[len("test_") :]: v for k, v in history[-1].items() if k.startswith("test_")}
    result = SGDResult(
        kind=kind,
        weights=weights,
        history=history,
        test=test,
        rows=plan.rows,
        partitions=partitions,
        wall_s=time.perf_counter() - start,
        output=out.uri,
    )
    _write(result, cfg=cfg, dataset=ds, out=out)
    return result


def _fmt(entry: dict[str, float]) -> str:
    skip = ("epoch", "elapsed_s", "trained_s")
    return ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in skip)


def _write(result: SGDResult, *, cfg: SGDConfig, dataset: Any, out: Store) -> None:
    from sparkdl.config.loader import to_dict

    out.write_bytes("model.npz", npz_bytes(W=result.weights.W, b=result.weights.b))
    out.write_bytes(
        "model.json",
        json_bytes(
            {
                "format": "sparkdl-linear/1",
                "kind": result.kind,
                "dim": int(result.weights.W.shape[0]),
                **dataset_card(dataset),
            }
        ),
    )
    out.write_bytes(
        "metrics.json",
        json_bytes(
            {
                "algorithm": "parallel_sgd",
                "config": to_dict(cfg),
                "kind": result.kind,
                "history": result.history,
                "test": result.test,
                "rows": result.rows,
                "partitions": result.partitions,
                "wall_s": result.wall_s,
            }
        ),
    )
