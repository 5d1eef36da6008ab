"""The performance model of ``sparkdl plan``: a training step's time, from parts.

A rank's step is its compute (forward, backward and optimizer on one batch, measured on this
machine with the model's own layers: :mod:`sparkdl.plan.calibrate`), then the collectives of the
training mode (no overlap: sparkdl's modes exchange inside ``apply_gradients``, after the whole
backward pass), while the input pipeline reads ahead (prefetched, so it costs only what it
lags behind)::

    step    = max(compute + compress + comm, input)
    comm    = sum over the mode's collectives of  time(collective) / steps between them
    allreduce(S bytes, n ranks) = 2 (n-1)/n * S/B + 2 (n-1) * alpha      (ring)
    allgather(s bytes each)     =   (n-1)/n * n s/B + (n-1) * alpha      (ring)
    epoch   = steps * step + fit + validation + checkpoint + epoch-end collectives
    fit     = what one epoch's ``fit`` costs beyond its steps (start, first batch, end)
    alpha   = link latency + the collective's software cost per message (measured here)

Ring all-reduce as in Patarasuk and Yuan (2009), the cost model Paleo (Qi, Sparks and
Talwalkar, ICLR 2017) adds to per-layer compute. The modes change S and how often the
all-reduce runs: fp16 halves S; top-k sends ``density`` of the values and their indices by
two allgathers; PowerSGD sends ``(rows + cols) * rank`` numbers per matrix in two
all-reduces; ``accumulate`` all-reduces every ``accumulate_steps`` steps; local SGD averages
the model and the optimizer's slots every ``local_sgd_period`` steps.

Examples
--------
>>> ring_allreduce_s(4e6, workers=2, link=Link(bandwidth=1.25e8, latency=1e-4))
0.0322
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sparkdl.errors import BadInputError

# bytes of the values an exchange sends: float32 gradients, int32 top-k indices
FLOAT32, FLOAT16, INDEX = 4, 2, 4
# float variables an optimizer keeps per weight (local SGD averages them with the model)
OPTIMIZER_SLOTS = {"adam": 2, "rmsprop": 1, "sgd": 0}


@dataclass(frozen=True)
class Link:
    """The network between ranks: bandwidth in bytes/s and latency per message in seconds."""

    bandwidth: float
    latency: float

    def __post_init__(self) -> None:
        if not self.bandwidth > 0:
            raise BadInputError(
                f"bandwidth is {self.bandwidth}; give a rate above 0, e.g. --bandwidth 10gbit"
            )
        if self.latency < 0:
            raise BadInputError(f"latency is {self.latency}; give 0 or more, e.g. --latency 50us")


def ring_allreduce_s(size: float, *, workers: int, link: Link) -> float:
    """Seconds of a ring all-reduce of ``size`` bytes over ``workers`` ranks (0 for one)."""
    n = workers
    if n <= 1:
        return 0.0
    return round(2 * (n - 1) / n * size / link.bandwidth + 2 * (n - 1) * link.latency, 9)


def ring_allgather_s(size: float, *, workers: int, link: Link) -> float:
    """Seconds of a ring allgather of ``size`` bytes from each of ``workers`` ranks.

    Examples
    --------
    >>> ring_allgather_s(1e6, workers=4, link=Link(bandwidth=1e9, latency=0.0))
    0.003
    """
    n = workers
    if n <= 1:
        return 0.0
    return round((n - 1) * size / link.bandwidth + (n - 1) * link.latency, 9)


@dataclass(frozen=True)
class Collective:
    """One collective a mode runs: ``allreduce`` or ``allgather`` of ``size`` bytes (per rank),
    once every ``every`` steps."""

    kind: str
    size: float
    every: float = 1.0


@dataclass(frozen=True)
class Mode:
    """A training mode and its parameters (the ``train`` keys of the same names)."""

    mode: str = "sync"
    compression: str = "none"
    accumulate_steps: int = 1
    local_sgd_period: int = 8
    topk_density: float = 0.01
    powersgd_rank: int = 4
    optimizer: str = "adam"

    @property
    def kind(self) -> str:
        """The ``--modes`` name: the compression when there is one, else the mode.

        Examples
        --------
        >>> Mode().kind, Mode(compression="fp16").kind, Mode(mode="local_sgd").kind
        ('sync', 'fp16', 'local_sgd')
        """
        return self.compression if self.compression != "none" else self.mode

    @property
    def label(self) -> str:
        """A short name: ``sync``, ``accumulate k=4``, ``local_sgd H=8``, ``sync+topk``...

        Examples
        --------
        >>> Mode(compression="powersgd").label, Mode(mode="local_sgd", local_sgd_period=16).label
        ('sync+powersgd r=4', 'local_sgd H=16')
        """
        base = {
            "sync": "sync",
            "accumulate": f"accumulate k={self.accumulate_steps}",
            "local_sgd": f"local_sgd H={self.local_sgd_period}",
        }[self.mode]
        extra = {
            "none": "",
            "fp16": "+fp16",
            "topk": f"+topk {self.topk_density:g}",
            "powersgd": f"+powersgd r={self.powersgd_rank}",
        }[self.compression]
        return base + extra


def _matrix(shape: tuple[int, ...]) -> tuple[int, int] | None:
    if len(shape) < 2:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    return (rows, cols) if min(rows, cols) > 1 else None


def collectives(shapes: list[tuple[int, ...]], mode: Mode) -> list[Collective]:
    """What one rank hands its collectives, per the trainer's exchanges (``train/exchange.py``,
    ``train/modes.py``).

    Examples
    --------
    >>> [(c.kind, c.size, c.every) for c in collectives([(10, 4), (4,)], Mode())]
    [('allreduce', 176, 1.0)]
    >>> [(c.kind, c.size) for c in collectives([(10, 4), (4,)], Mode(compression="topk",
    ...                                                                  topk_density=0.1))]
    [('allgather', 20), ('allgather', 20)]
    >>> [(c.size, c.every) for c in collectives([(10, 4)], Mode(mode="local_sgd"))]
    [(480, 8.0)]
    """
    params = sum(math.prod(s) for s in shapes)
    if mode.mode == "local_sgd":
        slots = OPTIMIZER_SLOTS.get(mode.optimizer, 2)
        return [
            Collective("allreduce", FLOAT32 * params * (1 + slots), float(mode.local_sgd_period))
        ]
    every = float(mode.accumulate_steps if mode.mode == "accumulate" else 1)
    if mode.compression == "none":
        return [Collective("allreduce", FLOAT32 * params, every)]
    if mode.compression == "fp16":
        return [Collective("allreduce", FLOAT16 * params, every)]
    if mode.compression == "topk":
        k = sum(max(1, math.ceil(mode.topk_density * math.prod(s))) for s in shapes)
        return [
            Collective("allgather", FLOAT32 * k, every),
            Collective("allgather", INDEX * k, every),
        ]
    first = second = 0
    for s in shapes:
        m = _matrix(s)
        if m is None:
            first += math.prod(s)
        else:
            first += m[0] * mode.powersgd_rank
            second += m[1] * mode.powersgd_rank
    return [
        Collective("allreduce", FLOAT32 * first, every),
        Collective("allreduce", FLOAT32 * second, every),
    ]


# the training metrics Horovod's MetricAverageCallback all-reduces at every epoch's end, one
# collective each: the loss and accuracy (classification) or the loss and MAE (regression)
EPOCH_METRICS = 2
VALIDATION_TOTALS = 24  # bytes: the validation's loss sum, score sum and rows, all-reduced


def epoch_end_collectives(
    shapes: list[tuple[int, ...]], mode: Mode, *, steps: int, validation: bool
) -> list[Collective]:
    """What one rank all-reduces once per epoch, after its last step (``train/modes.py``'s
    epoch end, the metrics' average, the validation totals).

    Local SGD averages the model and the optimizer's slots once more unless the epoch's last
    step did; accumulation applies a last, partial group unless the steps are a multiple of
    ``accumulate_steps``.

    Examples
    --------
    >>> [(c.size, c.every) for c in epoch_end_collectives([(10, 4)], Mode(mode="local_sgd"),
    ...                                                   steps=12, validation=True)]
    [(4, 1.0), (4, 1.0), (24, 1.0), (480, 1.0)]
    >>> len(epoch_end_collectives([(10, 4)], Mode(mode="local_sgd"), steps=16, validation=False))
    2
    """
    out = [Collective("allreduce", FLOAT32) for _ in range(EPOCH_METRICS)]
    if validation:
        out.append(Collective("allreduce", VALIDATION_TOTALS))
    period = {"local_sgd": mode.local_sgd_period, "accumulate": mode.accumulate_steps}
    if steps % period.get(mode.mode, 1):  # once more, this epoch
        out.extend(Collective(c.kind, c.size) for c in collectives(shapes, mode))
    return out


def collectives_s(cs: list[Collective], *, workers: int, link: Link) -> float:
    """Seconds of ``cs`` per step (each collective's time over the steps between its runs)."""
    total = 0.0
    for c in cs:
        one = (ring_allreduce_s if c.kind == "allreduce" else ring_allgather_s)(
            c.size, workers=workers, link=link
        )
        total += one / c.every
    return total


def comm_s(shapes: list[tuple[int, ...]], mode: Mode, *, workers: int, link: Link) -> float:
    """Communication seconds per step, averaged over the steps between collectives."""
    return collectives_s(collectives(shapes, mode), workers=workers, link=link)


def compress_s(shapes: list[tuple[int, ...]], mode: Mode, *, rates: Rates) -> float:
    """Seconds per step a rank spends compressing: top-k's selection, PowerSGD's products."""
    if mode.compression == "topk":
        return sum(math.prod(s) for s in shapes) / rates.topk_values_per_s
    if mode.compression == "powersgd":
        flops = 0.0
        for s in shapes:
            m = _matrix(s)
            if m is not None:  # M Q, M^T P, and orthogonalising P
                flops += 4 * m[0] * m[1] * mode.powersgd_rank + 2 * m[0] * mode.powersgd_rank**2
        return flops / rates.matmul_flops
    return 0.0


@dataclass(frozen=True)
class Rates:
    """What this machine does per second, measured (:mod:`sparkdl.plan.calibrate`)."""

    topk_values_per_s: float  # values top-k selection scans per second (one thread)
    matmul_flops: float  # float32 matrix-multiply FLOP/s (one thread)


@dataclass(frozen=True)
class Compute:
    """One rank's measured compute for a model at one batch size and thread count."""

    batch_size: int
    threads: int
    step_s: float  # forward, backward and optimizer update on one batch (mean over an epoch)
    forward_row_s: float  # validation per row: the trainer's pipeline and scorer
    checkpoint_s: float  # rank 0 saving the model and optimizer state
    fit_s: float = 0.0  # per epoch: a fit's start and end, the reseed, the first batch's wait
    layers: dict[str, float] = field(default_factory=dict)  # forward+backward s per layer


@dataclass(frozen=True)
class Job:
    """What is planned: data, epochs, workers and the link between them."""

    train_rows: int
    validation_rows: int
    epochs: int
    workers: int
    cores_per_worker: int
    link: Link
    input_rows_per_s: float | None = None  # one rank's reader; None: in memory, free

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise BadInputError(
                f"workers={self.workers}; give 1 or more (launch.num_workers, --workers)"
            )
        if self.train_rows < 1:
            raise BadInputError(f"train_rows={self.train_rows}; give the rows of the train split")


@dataclass(frozen=True)
class Prediction:
    """The predicted time of one job, in parts (seconds)."""

    mode: str
    workers: int
    compute_s: float
    compress_s: float
    comm_s: float
    input_s: float
    step_s: float
    steps_per_epoch: int
    overhead_s: float  # per epoch: fit's own cost, validation, checkpoint, epoch-end collectives
    epoch_s: float
    total_s: float
    core_hours: float

    def row(self) -> list[str]:
        """The prediction as a table row (milliseconds per step, seconds per epoch)."""
        ms = [self.compute_s, self.compress_s, self.comm_s, self.input_s, self.step_s]
        return [
            self.mode,
            str(self.workers),
            *(f"{1000 * v:.2f}" for v in ms),
            f"{self.epoch_s:.2f}",
            f"{self.total_s:.1f}",
            f"{self.core_hours:.4f}",
        ]


COLUMNS = [
    "mode",
    "workers",
    "compute ms",
    "compress ms",
    "comm ms",
    "input ms",
    "step ms",
    "epoch s",
    "total s",
    "core-hours",
]


def predict(
    *, shapes: list[tuple[int, ...]], mode: Mode, compute: Compute, rates: Rates, job: Job
) -> Prediction:
    """Predict one job's step, epoch and total time from the calibrated parts.

    Examples
    --------
    >>> c = Compute(batch_size=64, threads=1, step_s=0.004, forward_row_s=1e-5, checkpoint_s=0.05)
    >>> r = Rates(topk_values_per_s=1e8, matmul_flops=1e10)
    >>> job = Job(train_rows=64_000, validation_rows=8000, epochs=2, workers=2,
    ...           cores_per_worker=1, link=Link(bandwidth=1.25e8, latency=1e-4))
    >>> p = predict(shapes=[(100, 10)], mode=Mode(), compute=c, rates=r, job=job)
    >>> p.steps_per_epoch, round(p.step_s * 1000, 3), round(p.epoch_s, 3)
    (500, 4.232, 2.207)
    """
    n = job.workers
    comm = comm_s(shapes, mode, workers=n, link=job.link) if n > 1 else 0.0
    compress = compress_s(shapes, mode, rates=rates)  # the exchange runs on one rank too
    feed = compute.batch_size / job.input_rows_per_s if job.input_rows_per_s else 0.0
    step = max(compute.step_s + compress + comm, feed)
    steps = max(1, job.train_rows // n // compute.batch_size)
    validation = compute.forward_row_s * math.ceil(job.validation_rows / n)
    ends = epoch_end_collectives(shapes, mode, steps=steps, validation=job.validation_rows > 0)
    epoch_end = collectives_s(ends, workers=n, link=job.link)
    overhead = compute.fit_s + validation + compute.checkpoint_s + epoch_end
    epoch = steps * step + overhead
    total = epoch * job.epochs
    return Prediction(
        mode=mode.label,
        workers=n,
        compute_s=compute.step_s,
        compress_s=compress,
        comm_s=comm,
        input_s=feed,
        step_s=step,
        steps_per_epoch=steps,
        overhead_s=overhead,
        epoch_s=epoch,
        total_s=total,
        core_hours=total * n * job.cores_per_worker / 3600,
    )


def best(predictions: list[Prediction]) -> tuple[Prediction, Prediction]:
    """The prediction of least total time, and of fewest core-hours (ties: fewer workers).

    Examples
    --------
    >>> fast = Prediction("sync", 4, 0, 0, 0, 0, 0, 1, 0, 0, total_s=10.0, core_hours=0.04)
    >>> lean = Prediction("sync", 1, 0, 0, 0, 0, 0, 1, 0, 0, total_s=30.0, core_hours=0.01)
    >>> [p.workers for p in best([fast, lean])]
    [4, 1]
    """
    if not predictions:
        raise BadInputError("no plan fits the bounds given; widen --workers or --modes")
    quickest = min(predictions, key=lambda p: (p.total_s, p.workers))
    cheapest = min(predictions, key=lambda p: (p.core_hours, p.workers))
    return quickest, cheapest
