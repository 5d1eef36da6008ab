"""The driver side of training: preflight, attempts with resume, progress, metrics.json.

A failed barrier stage is not retried by Spark; :func:`sparkdl.train.attempts.run_attempts`
retries it up to ``train.max_attempts`` times, each attempt resuming from the last complete
checkpoint (an interrupt or a rank's bad input is not retried).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sparkdl.config.loader import to_dict
from sparkdl.config.schema import LaunchConfig
from sparkdl.config.train import TrainConfig
from sparkdl.data.dataset import PreparedDataset, open_dataset
from sparkdl.data.publish import config_hash
from sparkdl.errors import BadInputError
from sparkdl.launch.barrier import BarrierLauncher
from sparkdl.launch.preflight import preflight
from sparkdl.lock import output_lock
from sparkdl.plan.preflight import plan_record, predict_run
from sparkdl.store import Store, parse_location
from sparkdl.store.check import check_output
from sparkdl.store.hadoop import HadoopStore
from sparkdl.train.attempts import run_attempts
from sparkdl.train.card import ModelCard
from sparkdl.train.data import petastorm_url, steps_per_epoch
from sparkdl.train.precheck import check_mode_applies, check_model_function
from sparkdl.train.result import checked
from sparkdl.train.worker import WorkerSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    output: str
    history: list[dict[str, float]]
    test: dict[str, float]
    attempts: int
    resumed_from_epoch: int | None
    wall_s: float
    samples_per_s: float
    workers: int
    export_dir: str
    weight_digests: list[str]
    # rows the validation (last epoch) and test metrics cover: every row of each split
    validation_rows: int = 0
    test_rows: int = 0
    # metrics.json's "exchange": the mode and what each rank's collectives carried per batch
    exchange: dict[str, Any] = field(default_factory=dict)
    trainable_parameters: int = 0


def split_steps(ds: PreparedDataset, split: str, *, workers: int, batch: int) -> int:
    """Training steps every rank runs per epoch on ``split`` (0 when the dataset has no such
    split); evaluation scores every row instead (:func:`eval_rows`).

    Examples
    --------
    >>> split_steps(ds, "train", workers=2, batch=256)  # doctest: +SKIP
    312
    """
    if split not in ds.manifest.splits:
        return 0
    return steps_per_epoch(ds.rank_rows(split, workers), batch)


def eval_rows(ds: PreparedDataset, split: str, *, workers: int) -> int:
    """Rows of ``split`` that validation or test metrics cover: all of them, each rank scoring
    its whole shard (0 when the dataset has no such split, or it is empty).

    Raises
    ------
    BadInputError
        When the split has fewer row groups than ranks.

    Examples
    --------
    >>> eval_rows(ds, "test", workers=2)  # doctest: +SKIP
    181
    """
    if split not in ds.manifest.splits or not ds.rows(split):
        return 0
    return sum(ds.rank_rows(split, workers))


def _check_run_identity(out: Store, identity: dict[str, Any]) -> None:
    """Refuse to resume checkpoints that belong to another dataset or config."""
    if out.exists(RUN_FILE):
        previous = json.loads(out.read_bytes(RUN_FILE))
        if previous != identity:
            raise BadInputError(
                f"{out.uri} holds a run for another dataset version or train config "
                f"({previous.get('dataset_version')}, config {previous.get('config_hash', '')[:12]}); "
                "choose a new train.output, or delete that folder to start over"
            )
    else:
        out.write_bytes(RUN_FILE, json.dumps(identity, indent=1).encode())


def _progress_printer(epochs: int) -> Any:
    def report(key: str, value: dict[str, Any]) -> None:
        metrics = "  ".join(
            f"{k} {v:.4f}"
            for k, v in value.items()
            if k not in ("epoch", "attempt", "epochs", "seconds", "wall_seconds")
        )
        done = int(value["epoch"]) + 1
        bar = "#" * round(20 * done / epochs)
        line = (
            f"[sparkdl train] [{bar:<20}] epoch {done}/{epochs} (attempt {value['attempt'] + 1})  "
            f"{metrics}  {value['seconds']:.1f} s"
        )
        print(line, file=sys.stderr, flush=True)

    return report


def run_training(
    spark: SparkSession,
    *,
    train: TrainConfig,
    launch: LaunchConfig,
    skip_preflight: bool = False,
    model_fn: Callable[..., Any] | None = None,
) -> TrainResult:
    """Train ``train.model`` on ``train.dataset`` with ``launch.num_workers`` Horovod ranks.

    Parameters
    ----------
    spark : SparkSession
        A session built with ``launch`` (dynamic allocation off, barrier timeouts set).
    train : TrainConfig
    launch : LaunchConfig
    skip_preflight : bool
        Skip the preflight checks (tests that exercise a launch failure on purpose).
    model_fn : callable, optional
        A model function object ``(input_dim=, num_classes=) -> tf.keras.Model`` to train
        instead of ``train.model`` (cloudpickled to the ranks; the Python API's estimator).

    Returns
    -------
    TrainResult
        Also written to ``<train.output>/metrics.json``.

    Raises
    ------
    LaunchError
        When every one of ``train.max_attempts`` attempts failed.
    RunInterruptedError
        On SIGINT or SIGTERM: the jobs are cancelled, no attempt is spent (exit 130).
    BadInputError
        When ``train.model.function`` names no function (before any stage); when the plan's
        calibration ranks could not build the model (before training, with their message); or
        when a rank failed on bad input (on the first attempt, with the rank's message).

    Examples
    --------
    >>> run_training(spark, train=cfg.train, launch=cfg.launch).test  # doctest: +SKIP
    {'accuracy': 0.91, 'loss': 0.23}
    """
    # One writer per train.output: a second run is refused before it touches anything.
    loc = parse_location(train.output, key="train.output")
    with output_lock(loc.uri, what="train.output", spark=spark):
        return _train_locked(
            spark, train=train, launch=launch, skip_preflight=skip_preflight, model_fn=model_fn
        )


def _train_locked(
    spark: SparkSession,
    *,
    train: TrainConfig,
    launch: LaunchConfig,
    skip_preflight: bool,
    model_fn: Callable[..., Any] | None,
) -> TrainResult:
    """:func:`run_training` with ``train.output`` locked."""
    start = time.perf_counter()
    model = train.model
    # the same on every rank: checked in milliseconds, before any stage (a function object was
    # checked by its caller)
    if model.kind == "custom" and model.function and model_fn is None:
        check_model_function(model.function)
    if not skip_preflight:
        preflight(spark, launch=launch)
    ds = open_dataset(spark, train.dataset)
    check_mode_applies(train, input_dim=ds.feature_dim, num_classes=ds.num_classes, fn=model_fn)
    workers = launch.num_workers
    # train.output is on the store: the ranks publish to it, the driver reads and writes its
    # own files there through Spark's Hadoop file system; a driver-only path is refused here.
    loc = check_output(spark, train.output, key="train.output")
    out = HadoopStore(spark, loc)
    identity = {
        "dataset_version": ds.manifest.version,
        "config_hash": config_hash(
            {
                k: v
                for k, v in to_dict(train).items()
                if k not in ("fault", "max_attempts", "predict")
            }
        ),
        "workers": workers,
    }
    _check_run_identity(out, identity)
    base = WorkerSpec(
        train=train,
        train_url=petastorm_url(ds.split_path("train")),
        validation_url=petastorm_url(ds.split_path("validation"))
        if "validation" in ds.manifest.splits
        else None,
        test_url=petastorm_url(ds.split_path("test")) if "test" in ds.manifest.splits else None,
        input_dim=ds.feature_dim,
        num_classes=ds.num_classes,
        steps_per_epoch=split_steps(ds, "train", workers=workers, batch=train.batch_size),
        validation_rows=eval_rows(ds, "validation", workers=workers),
        test_rows=eval_rows(ds, "test", workers=workers),
        checkpoint_dir=loc.child("checkpoints").uri,
        export_dir=loc.child("model").uri,
        tensorboard_dir=loc.child("tensorboard").uri,
        attempt=0,
        heartbeat_timeout_s=launch.stall_timeout_s,
        card=ModelCard(
            featurizer=ds.featurizer_path,
            dataset_version=ds.manifest.version,
            feature_dim=ds.feature_dim,
            label_values=[str(v) for v in ds.manifest.label_values or []],
        ),
        model_fn=model_fn,
    )
    if base.validation_rows == 0:
        base = replace(base, validation_url=None)
    if base.test_rows == 0:
        base = replace(base, test_url=None)
    logger.info(
        "training %s on %s: %d workers, %d steps of %d per rank per epoch, %d epochs",
        train.model.kind,
        ds.path,
        workers,
        base.steps_per_epoch,
        train.batch_size,
        train.epochs,
    )
    predicted = predict_run(
        train=train,
        workers=workers,
        threads=launch.threads_per_worker or 1,
        input_dim=ds.feature_dim,
        num_classes=ds.num_classes,
        train_rows=base.steps_per_epoch * train.batch_size * workers,
        validation_rows=base.validation_rows,
        model_fn=model_fn,
        # the ranks of a local or local-cluster master all share this machine
        ranks_per_host=workers if spark.sparkContext.master.startswith("local") else 1,
        launch_env=dict(launch.env),
        spark=spark,
    )
    launcher = BarrierLauncher(spark, config=launch)
    done = run_attempts(
        spark.sparkContext,
        launcher,
        base,
        max_attempts=train.max_attempts,
        on_report=_progress_printer(train.epochs),
        heartbeat_timeout_s=launch.stall_timeout_s,
        checkpoints=HadoopStore(spark, loc.child("checkpoints")),
    )
    result = checked(done.result)
    history = _unique_epochs(result.history)
    wall = time.perf_counter() - start
    metrics = {
        "history": history,
        "validation": {k: v for k, v in history[-1].items() if k.startswith("val_")}
        if history
        else {},
        "test": result.test,
        # rows each metric covers: every row of the split (0 without one)
        "validation_rows": result.validation_rows,
        "test_rows": result.test_rows,
        "wall_s": wall,
        "fit_s": result.fit_seconds,
        "samples_per_s": result.samples_per_s,
        "workers": workers,
        "data_source": train.data_source,
        "rank0_memory_rows": result.memory_rows,
        "attempts": done.attempts,
        "resumed_from_epoch": done.resumed_from_epoch,
        "weights_identical_on_all_ranks": result.weights_identical,
        "trainable_parameters": result.parameters,
        # the mode, and what each rank's collectives carried per batch in the last attempt
        "exchange": {
            "mode": train.mode,
            "compression": train.compression,
            **result.traffic_per_step(),
        },
        # the plan's prediction for this run beside what it measured (sparkdl.plan)
        "plan": plan_record(predicted, history),
        "dataset": {"root": ds.root, "version": ds.manifest.version},
        "featurizer": ds.featurizer_path,
        "model": result.export_dir,
        "config": to_dict(train),
    }
    # the model card was written by rank 0, into the model folder it published
    out.write_bytes("metrics.json", json.dumps(metrics, indent=1).encode())
    return TrainResult(
        output=loc.uri,
        history=history,
        test=result.test,
        attempts=done.attempts,
        resumed_from_epoch=done.resumed_from_epoch,
        wall_s=wall,
        samples_per_s=metrics["samples_per_s"],
        workers=workers,
        export_dir=result.export_dir,
        weight_digests=list(result.weight_digests),
        validation_rows=metrics["validation_rows"],
        test_rows=metrics["test_rows"],
        exchange=metrics["exchange"],
        trainable_parameters=result.parameters,
    )


def _unique_epochs(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """Keep one entry per epoch (the latest), in epoch order."""
    by_epoch = {int(h["epoch"]): h for h in history}
    return [by_epoch[e] for e in sorted(by_epoch)]
