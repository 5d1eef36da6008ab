"""The trainings of ``sparkdl bench comms`` at one link rate: one process, its own Spark.

:func:`run_plan` runs in the process that ``scripts/slownet.sh`` starts inside the private
network namespace, so the driver, the executors and the ranks all talk over its rate-limited
loopback. Each :class:`Training` runs ``run_training`` on the prepared data; a ``pair`` runs two
1-rank trainings at once (two barrier stages side by side, one core each), the per-core
baseline. What each run measured comes back as a :class:`Measured`, one JSON line each on
stdout (``python -m sparkdl.bench.comms_runs PLAN.json``).

Examples
--------
>>> Training(model="mlp", name="sync", overrides=("train.mode=sync",)).workers
2
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Training:
    """One training of the benchmark: a model's dataset and config, and a mode."""

    model: str  # a key of the plan's ``configs``
    name: str  # the mode's label in the report
    overrides: tuple[str, ...] = ()  # train.* settings of the mode
    workers: int = 2
    pair: bool = False  # two 1-rank trainings side by side (workers must be 1)


@dataclass(frozen=True)
class Plan:
    """What one child runs: the base config per model, the trainings, a scratch folder."""

    rate: str
    workdir: str
    configs: dict[str, list[str]]  # model -> overrides of conf/local.yaml (dataset, model, ...)
    trainings: list[Training] = field(default_factory=list)
    # probe the link between two ranks first (sparkdl bench plan): one {"link": ...} line
    probe_link: bool = False
    # measure the model's compute right before each training (sparkdl bench plan)
    calibrate: bool = False

    def to_json(self) -> str:
        """The plan as the child reads it."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan written by :meth:`to_json`."""
        raw = json.loads(text)
        runs = [Training(**{**t, "overrides": tuple(t["overrides"])}) for t in raw["trainings"]]
        return cls(
            rate=raw["rate"],
            workdir=raw["workdir"],
            configs=raw["configs"],
            trainings=runs,
            probe_link=bool(raw.get("probe_link", False)),
            calibrate=bool(raw.get("calibrate", False)),
        )


@dataclass(frozen=True)
class Measured:
    """What one training measured (a pair: both runs' throughput added, the first's curve)."""

    model: str
    name: str
    rate: str
    workers: int
    samples_per_s: float  # per-epoch samples over the median epoch (epochs 2..), all ranks
    epoch_s: float  # the median time between epoch ends (epochs 2..)
    history: list[dict[str, float]]  # per epoch: wall_seconds, val_accuracy, ...
    bytes_per_step: float  # what a rank handed its collectives per batch (the largest rank)
    collectives_per_step: float
    parameters: int
    # every repeat's samples/s, when the run was repeated (this one is their median)
    repeats: list[float] = field(default_factory=list)
    # the plan's compute calibration measured right before this training (Plan.calibrate)
    calibration: dict[str, Any] | None = None

    @property
    def final_accuracy(self) -> float:
        """The last epoch's validation accuracy (every validation row)."""
        return float(self.history[-1]["val_accuracy"])

    def seconds_to(self, accuracy: float) -> float | None:
        """Training time (epoch ends, from the first epoch's start) until the validation
        accuracy first reaches ``accuracy``; None when it never does.

        Examples
        --------
        >>> m = Measured("m", "sync", "off", 2, 1.0, 1.0, [
        ...     {"wall_seconds": 2.0, "val_accuracy": 0.7},
        ...     {"wall_seconds": 1.5, "val_accuracy": 0.81}], 4.0, 1.0, 1)
        >>> m.seconds_to(0.8), m.seconds_to(0.9)
        (3.5, None)
        """
        spent = 0.0
        for epoch in self.history:
            spent += float(epoch["wall_seconds"])
            # accuracies are ratios of row counts: 0.9825 - 0.005 must not exceed 0.9775
            if float(epoch["val_accuracy"]) >= accuracy - 1e-9:
                return spent
        return None

    def to_json(self) -> str:
        """One line of the child's output."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Measured:
        """Read a line written by :meth:`to_json`."""
        return cls(**json.loads(text))


def epoch_seconds(history: list[dict[str, float]]) -> float:
    """Median time between consecutive epoch ends, epochs 2 on (the first holds tracing).

    Examples
    --------
    >>> epoch_seconds([{"wall_seconds": 9.0}, {"wall_seconds": 2.0}, {"wall_seconds": 4.0}])
    3.0
    """
    secs = [h["wall_seconds"] for h in history[1:]] or [history[0]["wall_seconds"]]
    return float(statistics.median(secs))


def _train(spark: Any, base: Any, training: Training, out: Path) -> Measured:
    from sparkdl.data.dataset import open_dataset
    from sparkdl.train.runner import run_training, split_steps

    cfg = base.train
    launch = dataclasses.replace(base.launch, num_workers=training.workers, threads_per_worker=1)
    result = run_training(spark, train=dataclasses.replace(cfg, output=str(out)), launch=launch)
    ds = open_dataset(spark, cfg.dataset)
    samples = split_steps(ds, "train", workers=training.workers, batch=cfg.batch_size)
    samples *= cfg.batch_size * training.workers
    ex = result.exchange
    return Measured(
        model=training.model,
        name=training.name,
        rate="",
        workers=training.workers,
        samples_per_s=samples / epoch_seconds(result.history),
        epoch_s=epoch_seconds(result.history),
        history=result.history,
        bytes_per_step=max(ex.get("bytes_per_step") or [0.0]),
        collectives_per_step=float(ex.get("collectives_per_step", 0.0)),
        parameters=result.trainable_parameters,
    )


def _pair(spark: Any, base: Any, training: Training, out: Path) -> Measured:
    """Two 1-rank trainings at once, each its own barrier stage: their samples/s added."""
    got: dict[int, Measured] = {}
    failed: list[BaseException] = []

    def one(i: int) -> None:
        try:
            got[i] = _train(spark, base, training, out / f"side-{i}")
        except BaseException as exc:  # re-raised on the calling thread below
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    first = got[0]
    return dataclasses.replace(
        first,
        workers=2,
        samples_per_s=got[0].samples_per_s + got[1].samples_per_s,
        epoch_s=max(got[0].epoch_s, got[1].epoch_s),
    )


def _calibrate(spark: Any, base: Any, training: Training) -> dict[str, Any]:
    """The plan's compute calibration of this training's model, with its ranks side by side
    (real ranks of a barrier stage in ``spark``'s cluster)."""
    from sparkdl.data.dataset import open_dataset
    from sparkdl.plan.calibrate import measure_compute

    ds = open_dataset(spark, base.train.dataset)
    compute, rates, shapes, device = measure_compute(
        base.train,
        input_dim=ds.feature_dim,
        num_classes=ds.num_classes,
        threads=1,
        ranks_per_host=training.workers,
        launch_env=dict(base.launch.env),
        spark=spark,
    )
    return {
        "compute": dataclasses.asdict(compute),
        "rates": dataclasses.asdict(rates),
        "shapes": [list(s) for s in shapes],
        "device": device,
    }


def run_plan(plan: Plan) -> list[Measured]:
    """Run every training of ``plan`` in one Spark session; print each as a JSON line."""
    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.session import build_session, stop_session

    repo = Path(__file__).resolve().parents[2]

    def config(*sets: str) -> Any:
        return load_config(SparkdlConfig, files=[repo / "conf" / "local.yaml"], overrides=sets)

    first = config(*next(iter(plan.configs.values())))
    spark = build_session(first.spark, launch=first.launch)
    done: list[Measured] = []
    try:
        if plan.probe_link:
            from sparkdl.plan.calibrate import measure_link

            links = measure_link(spark)
            print(json.dumps({"link": {k: dataclasses.asdict(v) for k, v in links.items()}}))
        for i, training in enumerate(plan.trainings):
            base = config(*plan.configs[training.model], *training.overrides)
            out = Path(plan.workdir) / f"{plan.rate}-{i}-{training.model}"
            calibration = _calibrate(spark, base, training) if plan.calibrate else None
            run = (_pair if training.pair else _train)(spark, base, training, out)
            run = dataclasses.replace(run, rate=plan.rate, calibration=calibration)
            logger.info(
                "%s at %s, %s: %.0f samples/s, accuracy %.4f",
                training.model,
                plan.rate,
                training.name,
                run.samples_per_s,
                run.final_accuracy,
            )
            print(run.to_json(), flush=True)
            done.append(run)
    finally:
        stop_session(spark)
    return done


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    run_plan(Plan.from_json(Path(sys.argv[1]).read_text()))
