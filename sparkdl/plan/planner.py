"""``sparkdl plan``: calibrate (or reuse the calibration), predict, and pick the best plans.

:func:`plan` predicts every (mode, worker count) within the bounds asked for, with the compute,
communication and input parts apart, and names the plan of least time and of fewest core-hours.
:func:`predict_run` is the one prediction the driver logs before a training run (and records in
its ``metrics.json``), from cached calibrations only when asked to be quick.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkdl.config.loader import to_dict
from sparkdl.errors import BadInputError
from sparkdl.plan import cache
from sparkdl.plan.model import COLUMNS, Compute, Job, Link, Mode, Prediction, Rates, best, predict

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sparkdl.config.train import TrainConfig

logger = logging.getLogger(__name__)

# how measure_link times its collectives (2: the mean of many small calls)
LINK_PROBE = 2
# the link assumed when none was measured or given: 10 Gbit/s, 50 us per message
DEFAULT_LINK = Link(bandwidth=10e9 / 8, latency=50e-6)


def mode_of(train: TrainConfig) -> Mode:
    """The :class:`Mode` a train config asks for."""
    return Mode(
        mode=train.mode,
        compression=train.compression,
        accumulate_steps=train.accumulate_steps,
        local_sgd_period=train.local_sgd_period,
        topk_density=train.topk_density,
        powersgd_rank=train.powersgd_rank,
        optimizer=train.optimizer,
    )


MODE_KINDS = ("sync", "fp16", "accumulate", "local_sgd", "topk", "powersgd")


def candidate_modes(train: TrainConfig, *, kinds: tuple[str, ...] = MODE_KINDS) -> list[Mode]:
    """The config's mode, then sync, fp16, accumulate k=4, local SGD and the two compressions;
    of those, the ones whose :attr:`~sparkdl.plan.model.Mode.kind` is in ``kinds``.

    Examples
    --------
    >>> from sparkdl.config.train import TrainConfig
    >>> [m.label for m in candidate_modes(TrainConfig())]
    ['sync', 'sync+fp16', 'accumulate k=4', 'local_sgd H=8', 'sync+topk 0.01', 'sync+powersgd r=4']
    >>> [m.label for m in candidate_modes(TrainConfig(), kinds=("sync", "local_sgd"))]
    ['sync', 'local_sgd H=8']
    """
    unknown = [k for k in kinds if k not in MODE_KINDS]
    if unknown or not kinds:
        raise BadInputError(
            f"--modes {','.join(kinds)}: give one or more of {', '.join(MODE_KINDS)}"
        )
    return [m for m in _all_candidates(train) if m.kind in kinds]


def _all_candidates(train: TrainConfig) -> list[Mode]:
    own = mode_of(train)
    others = [
        dataclasses.replace(own, mode="sync", compression="none"),
        dataclasses.replace(own, mode="sync", compression="fp16"),
        dataclasses.replace(own, mode="accumulate", compression="none", accumulate_steps=4),
        dataclasses.replace(own, mode="local_sgd", compression="none"),
        dataclasses.replace(own, mode="sync", compression="topk"),
        dataclasses.replace(own, mode="sync", compression="powersgd"),
    ]
    out = [own]
    for m in others:
        if m.label not in {o.label for o in out}:
            out.append(m)
    return out


@dataclass(frozen=True)
class Calibration:
    """What the plan measured (or read from the cache) on this machine."""

    compute: Compute
    rates: Rates
    shapes: list[tuple[int, ...]]
    device: str
    link: dict[str, Link] = field(default_factory=dict)  # empty when the link was not probed


def compute_calibration(
    train: TrainConfig,
    *,
    input_dim: int,
    num_classes: int,
    threads: int,
    model_fn: Any = None,
    measure: bool = True,
    ranks_per_host: int = 1,
    launch_env: dict[str, str] | None = None,
    spark: SparkSession | None = None,
) -> tuple[Compute, Rates, list[tuple[int, ...]], str] | None:
    """The compute calibration of ``train.model`` at its batch size, with ``ranks_per_host``
    ranks sharing this machine (real ranks of ``spark``'s cluster when given, else child
    processes) and the ranks' ``launch.env``: cached, else measured (unless ``measure`` is
    False: None)."""
    from sparkdl.plan.calibrate import measure_compute

    model = to_dict(train.model)
    if model_fn is not None:
        model["function_object"] = f"{model_fn.__module__}:{model_fn.__qualname__}"
    key = {
        "model": model,
        "input_dim": input_dim,
        "num_classes": num_classes,
        "batch_size": train.batch_size,
        "optimizer": train.optimizer,
        "threads": threads,
        "ranks_per_host": ranks_per_host,
        "side_by_side": side_by_side(ranks_per_host, spark=spark),
        "env": dict(sorted((launch_env or {}).items())),
    }
    found = cache.load("compute", key)
    if found is None:
        if not measure:
            return None
        compute, rates, shapes, device = measure_compute(
            train,
            input_dim=input_dim,
            num_classes=num_classes,
            threads=threads,
            model_fn=model_fn,
            ranks_per_host=ranks_per_host,
            launch_env=launch_env,
            spark=spark,
        )
        cache.save(
            "compute",
            key,
            {
                "compute": dataclasses.asdict(compute),
                "rates": dataclasses.asdict(rates),
                "shapes": shapes,
                "device": device,
            },
        )
        return compute, rates, shapes, device
    return (
        Compute(**found["compute"]),
        Rates(**found["rates"]),
        [tuple(s) for s in found["shapes"]],
        found["device"],
    )


def side_by_side(ranks_per_host: int, *, spark: Any) -> str:
    """How a calibration of ``ranks_per_host`` ranks ran them (part of its cache key).

    Examples
    --------
    >>> side_by_side(1, spark=None), side_by_side(2, spark=None), side_by_side(2, spark=object())
    ('alone', 'child processes', 'barrier stage')
    """
    if ranks_per_host <= 1:
        return "alone"
    return "child processes" if spark is None else "barrier stage"


def link_calibration(
    spark: SparkSession | None, *, network: str, measure: bool = True
) -> dict[str, Link]:
    """The measured link of this cluster (``network`` labels it: ``host``, a slownet rate):
    cached, else probed with two ranks (unless ``measure`` is False or there is no session)."""
    from sparkdl.plan.calibrate import measure_link

    # the probe's method is part of the key: a link measured another way is measured again
    key = {"network": network, "probe": LINK_PROBE}
    found = cache.load("link", key)
    if found is not None:
        return {k: Link(**v) for k, v in found.items()}
    if not measure or spark is None:
        return {}
    links = measure_link(spark)
    cache.save("link", key, {k: dataclasses.asdict(v) for k, v in links.items()})
    return links


def target_link(
    measured: dict[str, Link], *, bandwidth: float | None, latency: float | None
) -> Link:
    """The link to predict for: the one given (plus the collectives' software cost per message
    measured here), else the measured one, else :data:`DEFAULT_LINK`.

    Examples
    --------
    >>> target_link({}, bandwidth=1.25e9, latency=1e-5)
    Link(bandwidth=1250000000.0, latency=1e-05)
    """
    here = measured.get("allreduce")
    if bandwidth is None and latency is None:
        return here or DEFAULT_LINK
    software = here.latency if here is not None else 0.0
    return Link(
        bandwidth=bandwidth if bandwidth is not None else (here or DEFAULT_LINK).bandwidth,
        latency=(latency if latency is not None else DEFAULT_LINK.latency) + software,
    )


def _bound(value: float | None, unit: float) -> str:
    return "(none)" if value is None else f"{value / unit:g}"


@dataclass(frozen=True)
class PlanReport:
    """Every prediction, and the best by time and by core-hours."""

    predictions: list[Prediction]
    fastest: Prediction
    cheapest: Prediction
    link: Link
    device: str
    layers: dict[str, float]

    def format(self) -> str:
        """The table, the link assumed and the two picks."""
        from sparkdl.bench.measure import format_table

        layers = ", ".join(f"{k} {1000 * v:.2f} ms" for k, v in self.layers.items())
        return "\n".join(
            [
                format_table(COLUMNS, [p.row() for p in self.predictions]),
                f"link: {8e-9 * self.link.bandwidth:.3g} Gbit/s, alpha {1e6 * self.link.latency:.1f} us;"
                f" compute measured on {self.device}; per layer (forward+backward): {layers}",
                f"fastest: {self.fastest.mode} on {self.fastest.workers} workers, "
                f"{self.fastest.total_s:.1f} s ({self.fastest.core_hours:.4f} core-hours)",
                f"fewest core-hours: {self.cheapest.mode} on {self.cheapest.workers} workers, "
                f"{self.cheapest.total_s:.1f} s ({self.cheapest.core_hours:.4f} core-hours)",
            ]
        )


def plan(
    calibration: Calibration,
    *,
    modes: list[Mode],
    workers: list[int],
    job: Job,
    max_total_s: float | None = None,
    max_core_hours: float | None = None,
) -> PlanReport:
    """Predict every mode on every worker count; of the plans within ``max_total_s`` and
    ``max_core_hours`` (when given), pick the fastest and the cheapest.

    Raises
    ------
    BadInputError
        A worker count below 1 (naming ``--workers``), or no plan within the bounds (naming
        the bounds and what the nearest plans take).
    """
    bad = [w for w in workers if w < 1]
    if bad:
        raise BadInputError(f"--workers has {bad}; every worker count must be 1 or more")
    out = [
        predict(
            shapes=calibration.shapes,
            mode=m,
            compute=calibration.compute,
            rates=calibration.rates,
            job=dataclasses.replace(job, workers=w),
        )
        for w in workers
        for m in modes
    ]
    within = [
        p
        for p in out
        if (max_total_s is None or p.total_s <= max_total_s)
        and (max_core_hours is None or p.core_hours <= max_core_hours)
    ]
    if not within:
        quickest, leanest = best(out)
        raise BadInputError(
            f"no plan fits --max-minutes {_bound(max_total_s, 60)} and --max-core-hours "
            f"{_bound(max_core_hours, 1)}: the fastest takes {quickest.total_s / 60:.3g} min "
            f"({quickest.mode} on {quickest.workers} workers), the cheapest "
            f"{leanest.core_hours:.3g} core-hours ({leanest.mode} on {leanest.workers}); "
            "widen the bounds, --workers or --modes"
        )
    fastest, cheapest = best(within)
    return PlanReport(
        predictions=out,
        fastest=fastest,
        cheapest=cheapest,
        link=job.link,
        device=calibration.device,
        layers=calibration.compute.layers,
    )
