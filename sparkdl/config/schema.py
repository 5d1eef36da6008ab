"""The typed, frozen config sections that sparkdl jobs read.

Defaults here are the lowest config layer; ``conf/*.yaml`` files and ``--set`` overrides sit on
top (see :func:`sparkdl.config.load_config`). Field metadata ``min``/``max`` bound numeric keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from sparkdl.config.baselines import KMeansConfig, SGDConfig
from sparkdl.config.data import GenerateConfig, PrepareConfig
from sparkdl.config.pipeline import PipelineConfig
from sparkdl.config.serve import EvaluateConfig, PredictConfig
from sparkdl.config.tracking import TrackingConfig
from sparkdl.config.train import TrainConfig
from sparkdl.errors import BadInputError

SparkProfile = Literal["local", "local-cluster", "standalone", "yarn", "databricks"]
LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR"]

_LOCAL_MASTER = re.compile(r"^local(\[(\*|\d+)(,\s*\d+)?\])?$")
_STANDALONE_MASTER = re.compile(r"^spark://[^:/\s]+:\d+(,[^:/\s]+:\d+)*$")


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class LocalClusterConfig:
    """Shape of a ``local-cluster[executors,cores,memory_mb]`` master (separate executor JVMs).

    Attributes
    ----------
    executors : int
        Executor JVMs started on this machine.
    cores_per_executor : int
        Task slots of each executor.
    memory_mb : int
        Memory of each executor JVM, in MB.
    """

    executors: int = field(default=2, metadata={"min": 1})
    cores_per_executor: int = field(default=1, metadata={"min": 1})
    memory_mb: int = field(default=1024, metadata={"min": 512})


@dataclass(frozen=True)
class SparkConfig:
    """How to get a SparkSession: which profile, which master, and extra Spark confs.

    Profiles: ``local`` (embedded ``local[cores]``), ``local-cluster`` (separate executor
    processes, for barrier and fault tests), ``standalone`` (``master: spark://host:port``),
    ``yarn`` and ``databricks`` (attach to the session the platform created).

    Attributes
    ----------
    profile : SparkProfile
        local, local-cluster, standalone, yarn or databricks: how the session is made.
    master : str | None
        The master URL (local[N] for local, spark://host:port for standalone); the other
        profiles set it themselves.
    cores : int
        Task slots of a local master (local[cores]).
    app_name : str
        The Spark application name.
    log_level : LogLevel
        Spark's own log level (DEBUG, INFO, WARN, ERROR).
    ui : bool
        Start the Spark web UI.
    conf : Mapping[str, str]
        Extra Spark confs (keys start with spark. or sparkdl.), applied when the session is
        built.
    """

    profile: SparkProfile = "local"
    master: str | None = None
    cores: int = field(default=2, metadata={"min": 1})
    local_cluster: LocalClusterConfig = field(default_factory=LocalClusterConfig)
    app_name: str = "sparkdl"
    log_level: LogLevel = "WARN"
    ui: bool = False
    conf: Mapping[str, str] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if self.profile == "standalone":
            if not self.master or not _STANDALONE_MASTER.match(self.master):
                raise BadInputError(
                    f"spark.master is {self.master!r} but profile 'standalone' needs "
                    "spark://host:port, for example --set spark.master=spark://127.0.0.1:7077"
                )
        elif self.profile == "local" and self.master is not None:
            if not _LOCAL_MASTER.match(self.master):
                raise BadInputError(
                    f"spark.master is {self.master!r} but profile 'local' takes local, local[N] "
                    "or local[*]; for a cluster choose spark.profile standalone, yarn or "
                    "local-cluster"
                )
        elif self.profile in ("yarn", "databricks", "local-cluster") and self.master is not None:
            raise BadInputError(
                f"spark.master is {self.master!r} but profile {self.profile!r} sets the master "
                "itself; remove spark.master"
            )
        for key in self.conf:
            if not key.startswith(("spark.", "sparkdl.")):
                raise BadInputError(
                    f"spark.conf key {key!r} is not a Spark conf (it must start with 'spark.' "
                    "or 'sparkdl.')"
                )


@dataclass(frozen=True)
class LaunchConfig:
    """How a barrier stage of Horovod ranks is started and guarded.

    Attributes
    ----------
    num_workers : int
        Horovod ranks, one Spark barrier task each; all must fit in the cluster's task slots at
        once.
    start_timeout_s : float
        Seconds the ranks may take to meet at Horovod's rendezvous.
    barrier_sync_timeout_s : int
        spark.barrier.sync.timeout of the session sparkdl builds.
    threads_per_worker : int | None
        TensorFlow threads per rank (default: the task's cores).
    stall_timeout_s : float
        A rank whose step counters stop for this long gets the stage cancelled.
    env : Mapping[str, str]
        Extra environment for every rank, e.g. HOROVOD_FUSION_THRESHOLD.
    verbose : bool
        Log every key the rendezvous server stores.
    warm_start : bool
        Keep one spare rank process per Python worker with TensorFlow and Horovod imported
        (about 0.5 GB each); the next launch starts in about a second.
    """

    num_workers: int = field(default=2, metadata={"min": 1})
    start_timeout_s: float = field(default=120.0, metadata={"min": 1.0})
    barrier_sync_timeout_s: int = field(default=600, metadata={"min": 10})
    threads_per_worker: int | None = field(default=None, metadata={"min": 1})
    stall_timeout_s: float = field(default=300.0, metadata={"min": 10.0})
    # Extra environment for every rank, e.g. Horovod tuning such as HOROVOD_CYCLE_TIME.
    env: Mapping[str, str] = field(default_factory=_empty)
    verbose: bool = False
    # Keep one spare rank process per Python worker with TensorFlow and Horovod imported, so
    # the next launch (a retry, the next training in the session) starts in about a second.
    # Costs about 0.5 GB of memory per idle task slot.
    warm_start: bool = False


@dataclass(frozen=True)
class AllreduceCheckConfig:
    """The smoke check that proves Spark + Horovod + Gloo work together end to end.

    Attributes
    ----------
    tensor_size : int
        Elements of each test tensor.
    rounds : int
        All-reduce rounds, each checked for the exact sum.
    """

    tensor_size: int = field(default=8, metadata={"min": 1})
    rounds: int = field(default=3, metadata={"min": 1})


@dataclass(frozen=True)
class SparkdlConfig:
    """The root config: one section per concern; each job reads the sections it needs."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    allreduce_check: AllreduceCheckConfig = field(default_factory=AllreduceCheckConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sgd: SGDConfig = field(default_factory=SGDConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
