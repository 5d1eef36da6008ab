"""What rank 0 hands the driver at the end of an attempt: :class:`RankResult`.

The ranks build it (:func:`sparkdl.train.worker.train_rank`) and the driver reads it
(:mod:`sparkdl.train.runner`); it travels pickled through the barrier stage. Its format is
checked on the driver: executors that run another sparkdl than the driver (a stale packed
environment) are named instead of being misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparkdl.errors import ClusterMisfitError

FORMAT = "sparkdl-rank-result/1"


@dataclass(frozen=True)
class RankResult:
    """Rank 0's result of a successful attempt.

    Examples
    --------
    >>> r = RankResult(history=[{"epoch": 0}], test={"accuracy": 0.9}, export_dir="/m",
    ...                weight_digests=["a", "a"], fit_seconds=2.0, samples=1000, workers=2)
    >>> checked(r).samples_per_s, r.weights_identical
    (500.0, True)
    """

    history: list[dict[str, float]]
    test: dict[str, float]
    export_dir: str
    # every rank's weight digest (an allgather), in rank order
    weight_digests: list[str]
    fit_seconds: float
    # samples trained in this attempt, all ranks together
    samples: int
    workers: int
    # rows the test and (last epoch's) validation metrics cover
    test_rows: int = 0
    validation_rows: int = 0
    # rows rank 0 held in memory (train.data_source=memory), else 0
    memory_rows: int = 0
    seconds: float = 0.0
    # every rank's counters of what it sent in this attempt (sparkdl.train.exchange.Traffic):
    # payload_bytes, collectives, batches
    traffic: list[dict[str, int]] = field(default_factory=list)
    # the model's trainable parameters
    parameters: int = 0
    format: str = field(default=FORMAT)

    @property
    def samples_per_s(self) -> float:
        """Training throughput of the attempt (0 when it trained nothing)."""
        return self.samples / self.fit_seconds if self.fit_seconds else 0.0

    def traffic_per_step(self) -> dict[str, Any]:
        """What each rank sent per training batch in this attempt (counted, not modelled).

        Examples
        --------
        >>> r = RankResult(history=[], test={}, export_dir="/m", weight_digests=[], fit_seconds=1,
        ...                samples=0, workers=2, traffic=[{"payload_bytes": 800,
        ...                "collectives": 4, "batches": 4}] * 2)
        >>> r.traffic_per_step()["bytes_per_step"], r.traffic_per_step()["collectives_per_step"]
        ([200.0, 200.0], 1.0)
        """
        per = [
            (t["payload_bytes"] / t["batches"], t["collectives"] / t["batches"])
            for t in self.traffic
            if t.get("batches")
        ]
        return {
            # the bytes of the tensors each rank handed to its collectives, per batch
            "bytes_per_step": [round(b, 3) for b, _ in per],
            "collectives_per_step": max((c for _, c in per), default=0.0),
            "batches": [t.get("batches", 0) for t in self.traffic],
            "payload_bytes": [t.get("payload_bytes", 0) for t in self.traffic],
        }

    @property
    def weights_identical(self) -> bool:
        """Whether every rank ended with the same weights."""
        return len(set(self.weight_digests)) == 1


def checked(result: Any) -> RankResult:
    """The driver's check of what came back from rank 0.

    Raises
    ------
    ClusterMisfitError
        When it is not a :class:`RankResult` of this format: the executors run another sparkdl.
    """
    fmt = getattr(result, "format", None)
    if not isinstance(result, RankResult) or fmt != FORMAT:
        found = fmt or type(result).__name__
        raise ClusterMisfitError(
            f"rank 0 returned {found!r}, not a {FORMAT!r} result: the executors run another "
            "sparkdl than the driver. Ship the driver's environment (scripts/submit.sh packs "
            "it) or install the same sparkdl on every node"
        )
    return result
