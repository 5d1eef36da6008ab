"""Config sections ``sgd`` and ``kmeans``: the MapReduce-style baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class BlockFaultConfig:
    """Fail one task once, for tests and rehearsals of recovery; inert by default.

    The task of ``partition`` raises on its first attempt at ``iteration`` (an SGD epoch or a
    k-means Lloyd iteration, 0-based). With ``engine: barrier`` the driver starts the stage
    again (``max_attempts``); with ``engine: jobs`` Spark retries the task, which needs
    ``local[N,F]`` with F >= 2 or ``spark.task.maxFailures`` >= 2 on a cluster.

    Attributes
    ----------
    partition : int
        The partition whose task raises on its first attempt; -1: none.
    iteration : int
        The iteration (SGD epoch or Lloyd iteration, 0-based) it raises at.
    """

    partition: int = field(default=-1, metadata={"min": -1})
    iteration: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class SGDConfig:
    """ParallelSGD (Zinkevich et al. 2010) on a prepared dataset.

    ``oneshot`` runs every epoch on each partition independently and averages once at the
    end; ``mixing`` (iterative parameter mixing) averages after every epoch and starts the next
    epoch from the average. ``model: auto`` picks logistic (2 classes), softmax (more) or linear
    (a regression task) from the dataset's manifest.

    Attributes
    ----------
    dataset : str
        The prepared dataset's root.
    output : str
        Where the model and metrics go.
    model : Literal['auto', 'logistic', 'softmax', 'linear']
        auto, logistic, softmax or linear (auto: logistic for 2 classes, softmax for more,
        linear for regression).
    mode : Literal['oneshot', 'mixing']
        oneshot (every epoch on each partition alone, one average at the end) or mixing (average
        after every epoch, the next epoch starts from it).
    partitions : int | None
        Blocks ("machines"), one model each; default: the cluster's task slots.
    engine : Literal['barrier', 'jobs']
        barrier (one live barrier stage serves every epoch) or jobs (one Spark job per epoch).
    max_attempts : int
        Attempts of a failed barrier stage.
    epochs : int
        Passes over each partition.
    batch_size : int
        Rows per step (numpy works best on a few hundred; small data may want 16 to 64).
    learning_rate : float
        Initial learning rate.
    lr_decay : float
        The learning rate of epoch e is learning_rate * lr_decay ** e.
    l2 : float
        L2 penalty.
    seed : int
        Seed of the data order and initial weights.
    compare : bool
        Also fit Spark MLlib on the same data and report both.
    """

    dataset: str = "data/prepared/classification"
    output: str = "runs/sgd"
    model: Literal["auto", "logistic", "softmax", "linear"] = "auto"
    mode: Literal["oneshot", "mixing"] = "mixing"
    # blocks ("machines"); default: the cluster's task slots
    partitions: int | None = field(default=None, metadata={"min": 1})
    # barrier: one live barrier stage serves every epoch; jobs: one Spark job per epoch
    engine: Literal["barrier", "jobs"] = "barrier"
    max_attempts: int = field(default=3, metadata={"min": 1})
    epochs: int = field(default=5, metadata={"min": 1})
    # numpy works best on a few hundred rows per step; small data may want 16 to 64
    batch_size: int = field(default=256, metadata={"min": 1})
    learning_rate: float = field(default=0.1, metadata={"min": 0.0})
    # learning rate of epoch e: learning_rate * lr_decay ** e
    lr_decay: float = field(default=0.7, metadata={"min": 0.0, "max": 1.0})
    l2: float = field(default=1e-5, metadata={"min": 0.0})
    seed: int = 42
    compare: bool = False
    fault: BlockFaultConfig = field(default_factory=BlockFaultConfig)


@dataclass(frozen=True)
class KMeansConfig:
    """Distributed k-means (Lloyd) with k-means|| initialisation on a prepared dataset.

    Attributes
    ----------
    dataset : str
        The prepared dataset's root.
    output : str
        Where the centres and metrics go.
    split : Literal['train', 'validation', 'test']
        train, validation or test: the split to cluster.
    k : int
        Clusters to find.
    max_iter : int
        Most Lloyd iterations.
    tol : float
        Stop when no centre moves more than tol (Euclidean distance), like MLlib's epsilon.
    init_rounds : int
        Rounds of k-means|| initialisation.
    oversampling : float
        Candidates sampled per k-means|| round, as a multiple of k (Bahmani et al.'s l = 2k).
    n_init : int
        k-means|| initialisations, each followed by Lloyd, sharing their passes; the lowest
        final cost is kept.
    race_passes : int
        Successive halving of the initialisations: after race_passes Lloyd passes the costlier
        half stops, again after twice as many, until one is left; 0: all run to the end.
    partitions : int | None
        Blocks ("machines"); default: the cluster's task slots.
    engine : Literal['barrier', 'jobs']
        barrier (one live barrier stage serves every iteration) or jobs (one Spark job per
        iteration).
    max_attempts : int
        Attempts of a failed barrier stage.
    seed : int
        Seed of the initialisation.
    compare : bool
        Also run MLlib and scikit-learn and report all three.
    """

    dataset: str = "data/prepared/blobs"
    output: str = "runs/kmeans"
    split: Literal["train", "validation", "test"] = "train"
    k: int = field(default=8, metadata={"min": 1})
    max_iter: int = field(default=50, metadata={"min": 1})
    # stop when no centre moves more than tol (Euclidean distance), like MLlib's epsilon
    tol: float = field(default=1e-4, metadata={"min": 0.0})
    init_rounds: int = field(default=2, metadata={"min": 1})
    # candidates sampled per k-means|| round, as a multiple of k (Bahmani et al.'s l = 2k)
    oversampling: float = field(default=2.0, metadata={"min": 0.1})
    # k-means|| initialisations, each followed by Lloyd; the lowest final cost is kept. All
    # share their passes over the data. 10: scikit-learn's n_init for seedings that are not
    # its greedy k-means++ (see README)
    n_init: int = field(default=10, metadata={"min": 1})
    # restarts race (successive halving): after race_passes Lloyd passes the costlier half of
    # the initialisations still in the race stops, again after twice as many passes, and so on
    # until one is left. 0: every initialisation runs to the end, as in scikit-learn
    race_passes: int = field(default=3, metadata={"min": 0})
    # blocks ("machines"); default: the cluster's task slots
    partitions: int | None = field(default=None, metadata={"min": 1})
    # barrier: one live barrier stage serves every iteration; jobs: one Spark job per iteration
    engine: Literal["barrier", "jobs"] = "barrier"
    max_attempts: int = field(default=3, metadata={"min": 1})
    seed: int = 42
    compare: bool = False
    fault: BlockFaultConfig = field(default_factory=BlockFaultConfig)
