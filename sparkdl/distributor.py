"""Run your own training function on N Spark barrier tasks as Horovod ranks.

``sparkdl.run(fn, *args, num_workers=N)`` is this project's ``HorovodRunner(np=N).run(fn)``
(Databricks) and ``TorchDistributor(num_processes=N).run(fn, *args)`` (Spark 3.4+) for Horovod
with TensorFlow: one barrier task per rank, each running ``fn(*args)`` in a fresh Python
process whose environment makes it a Horovod rank (Gloo on CPU executors, NCCL on GPU ones,
through Horovod's rendezvous on the driver). Inside ``fn`` you write Horovod as its own
documentation does: ``hvd.init()``, ``hvd.DistributedOptimizer``, the broadcast callback.

It returns what rank 0's ``fn`` returned, and prints every rank's output on the driver as
``[rank r] ...`` while the stage runs (``stream_output``). Before the stage it checks the
cluster the way ``sparkdl train`` does (task slots, dynamic allocation, GPU confs, and that the
executors' Python imports TensorFlow and Horovod), so a misfit fails in seconds with the conf to
change.

Examples
--------
>>> Distributor(num_workers=2, spark=None, start_timeout_s=60).options["start_timeout_s"]
60
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkdl.config.loader import closest_key, load_section
from sparkdl.config.schema import LaunchConfig
from sparkdl.errors import BadInputError
from sparkdl.launch.output import OutputSink, print_rank_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

# LaunchConfig's keys a caller may set (spark.barrier.sync.timeout belongs to the session)
OPTIONS = tuple(
    f.name
    for f in dataclasses.fields(LaunchConfig)
    if f.name not in ("num_workers", "barrier_sync_timeout_s")
)


class Distributor:
    """Runs functions on ``num_workers`` Horovod ranks, one Spark barrier task each.

    Parameters
    ----------
    num_workers : int
        Ranks, one barrier task each (all must fit in the cluster's task slots at once).
    spark : SparkSession, optional
        The session whose cluster runs the ranks; default: the active session (a notebook's
        ``spark``), else ``SparkSession.builder.getOrCreate()``.
    stream_output : bool or callable
        Print each rank's lines on the driver as ``[rank r] ...`` (True, the default), hand
        them to a callable ``(rank, line)``, or leave them in the executor logs only (False).
    preflight : bool
        Check the cluster before the stage (default True; about a second).
    **options
        The launcher's settings, as the ``launch`` section of a sparkdl config names them:
        ``start_timeout_s``, ``threads_per_worker``, ``stall_timeout_s``, ``env`` (extra
        environment for every rank), ``verbose``, ``warm_start``.

    Raises
    ------
    BadInputError
        For a worker count below 1, an unknown option (naming the closest one) or a value out
        of its bounds, before anything runs.
    """

    def __init__(
        self,
        *,
        num_workers: int,
        spark: SparkSession | None = None,
        stream_output: bool | OutputSink = True,
        preflight: bool = True,
        **options: Any,
    ) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise BadInputError(
                f"num_workers={num_workers!r}: give a whole number of ranks, 1 or more (one "
                "Spark barrier task each)"
            )
        if "barrier_sync_timeout_s" in options:
            raise BadInputError(
                "barrier_sync_timeout_s is the session's spark.barrier.sync.timeout: set that "
                "conf when you build the SparkSession"
            )
        for key in options:
            if key not in OPTIONS:
                hint = closest_key(key, OPTIONS)
                raise BadInputError(
                    f"sparkdl.Distributor: unknown option {key}="
                    f"{options[key]!r}{f'; did you mean {hint}?' if hint else ''} The options "
                    f"are num_workers, spark, stream_output, preflight, {', '.join(OPTIONS)}."
                )
        self.config: LaunchConfig = load_section(
            LaunchConfig, {**options, "num_workers": num_workers}, source="sparkdl.Distributor"
        )
        self.options = dict(options)
        if not (isinstance(stream_output, bool) or callable(stream_output)):
            raise BadInputError(
                f"stream_output={stream_output!r}: give True, False or a callable (rank, line)"
            )
        self._sink: OutputSink | None = (
            print_rank_line if stream_output is True else (stream_output or None)
        )
        self._spark = spark
        self._preflight = preflight

    @property
    def spark(self) -> SparkSession:
        """The session the ranks run in (the active one unless one was given)."""
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return self._spark

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on every rank; return rank 0's result.

        ``fn`` and its arguments travel to the executors with cloudpickle: a function defined
        in a notebook or script works, and so does one importable on the executors.

        Raises
        ------
        BadInputError
            When ``fn`` is not callable.
        sparkdl.launch.barrier.LaunchError
            When a rank fails; the message carries that rank's last output lines.
        """
        if not callable(fn):
            raise BadInputError(f"run({fn!r}, ...): the first argument must be a function")
        from sparkdl.launch.barrier import BarrierLauncher
        from sparkdl.launch.preflight import preflight

        launcher = BarrierLauncher(self.spark, config=self.config)  # a local master's slots
        if self._preflight:
            preflight(self.spark, launch=self.config)
        call = functools.partial(fn, **kwargs) if kwargs else fn
        return launcher.run(call, *args, on_output=self._sink)


def run(
    fn: Callable[..., Any],
    *args: Any,
    num_workers: int,
    spark: SparkSession | None = None,
    stream_output: bool | OutputSink = True,
    preflight: bool = True,
    **options: Any,
) -> Any:
    """Run ``fn(*args)`` on ``num_workers`` Horovod ranks and return rank 0's result.

    The one-call form of :class:`Distributor` (same keywords); equivalent to
    ``HorovodRunner(np=num_workers).run(fn)`` and ``TorchDistributor(num_processes=
    num_workers).run(fn, *args)``.

    Examples
    --------
    >>> def train(epochs):
    ...     import horovod.tensorflow.keras as hvd
    ...     hvd.init()
    ...     return hvd.size() * epochs
    >>> sparkdl.run(train, 3, num_workers=2)  # doctest: +SKIP
    6
    """
    distributor = Distributor(
        num_workers=num_workers,
        spark=spark,
        stream_output=stream_output,
        preflight=preflight,
        **options,
    )
    return distributor.run(fn, *args)
