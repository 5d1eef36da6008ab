"""Config section ``train``: the Horovod Keras trainer, its checkpoints, retries and faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sparkdl.errors import BadInputError


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train.

    ``mlp`` for tabular features, ``cnn`` for image-shaped features (``image_shape``, whose
    product must equal the feature dimension), ``custom`` for ``module:function`` returning an
    uncompiled ``tf.keras.Model`` given ``input_dim`` and ``num_classes``. A ``cnn``'s ``head``
    lists the widths of dense layers between its flattened feature maps and the logits (a
    VGG-style classifier, millions of weights); empty, it pools the maps globally instead.

    Attributes
    ----------
    kind : Literal['mlp', 'cnn', 'custom']
        mlp, cnn or custom.
    hidden : int
        Units of each hidden layer (mlp).
    depth : int
        Hidden layers (mlp) or convolution blocks (cnn).
    dropout : float
        Dropout after each hidden layer.
    image_shape : tuple[int, ...]
        The shape features are reshaped to (cnn), e.g. [16, 16].
    filters : int
        Filters of the first convolution block (cnn; doubled per block).
    head : tuple[int, ...]
        Dense layer widths on the flattened maps (cnn); empty: global average pooling.
    function : str | None
        package.module:function returning a Keras model (custom).
    """

    kind: Literal["mlp", "cnn", "custom"] = "mlp"
    hidden: int = field(default=64, metadata={"min": 1})
    depth: int = field(default=2, metadata={"min": 0, "max": 64})
    dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 0.95})
    image_shape: tuple[int, ...] = ()
    filters: int = field(default=16, metadata={"min": 1})
    head: tuple[int, ...] = ()
    function: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "custom" and (not self.function or ":" not in self.function):
            raise BadInputError(
                f"train.model.function is {self.function!r}; model kind 'custom' needs "
                "'package.module:function', e.g. --set train.model.function=mypkg.models:build"
            )
        if self.kind == "cnn" and len(self.image_shape) not in (2, 3):
            raise BadInputError(
                f"train.model.image_shape is {list(self.image_shape)}; model kind 'cnn' needs "
                "[height, width] or [height, width, channels]"
            )
        if self.head and (self.kind != "cnn" or min(self.head) < 1):
            raise BadInputError(
                f"train.model.head is {list(self.head)}; it lists positive dense-layer widths "
                f"of a cnn (train.model.kind is {self.kind}), e.g. [2048, 2048]; for an mlp set "
                "train.model.hidden and depth"
            )


@dataclass(frozen=True)
class FaultConfig:
    """Fault injection for tests and rehearsals; inert unless ``kind`` is set.

    The fault fires once, on ``rank`` at ``epoch`` (0-based) and ``batch`` of ``attempt``
    (0-based): ``kill`` ends the rank's process with SIGKILL, ``raise`` raises RuntimeError,
    ``stall`` sleeps forever (for timeout tests).

    Attributes
    ----------
    kind : Literal['none', 'kill', 'raise', 'stall']
        none, kill, raise or stall: a failure to rehearse.
    rank : int
        The rank that fails.
    epoch : int
        The epoch it fails in.
    batch : int
        The batch it fails at.
    attempt : int
        The attempt it fails in (later attempts run clean).
    """

    kind: Literal["none", "kill", "raise", "stall"] = "none"
    rank: int = field(default=0, metadata={"min": 0})
    epoch: int = field(default=0, metadata={"min": 0})
    batch: int = field(default=0, metadata={"min": 0})
    attempt: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class TrainConfig:
    """The Horovod trainer: data, model, optimisation, checkpoints and recovery.

    Attributes
    ----------
    dataset : str
        The prepared dataset's root (prepare.output).
    output : str
        Where the model, metrics.json, checkpoints and TensorBoard logs go.
    epochs : int
        Training epochs.
    batch_size : int
        Rows per rank per step.
    learning_rate : float
        Learning rate of one rank (scaled by the number of ranks when scale_lr).
    scale_lr : bool
        Multiply learning_rate by the number of ranks.
    warmup_epochs : float
        Epochs over which the learning rate ramps up to its scaled value.
    optimizer : Literal['adam', 'sgd', 'rmsprop']
        adam, sgd (with momentum 0.9) or rmsprop.
    early_stopping_patience : int
        Epochs without a better val_loss before training stops; 0: never.
    mode : Literal['sync', 'accumulate', 'local_sgd']
        sync, accumulate or local_sgd: how the ranks combine their work.
    accumulate_steps : int
        Backward passes per exchange (mode accumulate).
    local_sgd_period : int
        Steps between weight averages (mode local_sgd).
    local_sgd_warmup_epochs : int
        Epochs of sync before local SGD starts (post-local SGD).
    compression : Literal['none', 'fp16', 'topk', 'powersgd']
        none, fp16, topk or powersgd: the gradient exchange of sync and accumulate.
    topk_density : float
        Share of each tensor's entries top-k sends per step (0 < d <= 1).
    powersgd_rank : int
        Rank of PowerSGD's low-rank factors.
    max_attempts : int
        Stage attempts, each resuming from the last checkpoint.
    seed : int
        Seed of the data order, dropout and initial weights.
    reader_workers : int
        petastorm reader threads per rank.
    data_source : Literal['parquet', 'memory']
        parquet (stream row groups every epoch) or memory (read each shard once).
    shuffle_buffer : int
        Rows of the shuffling buffer of each rank's reader.
    tensorboard : bool
        Write TensorBoard logs (rank 0).
    predict : bool
        Predict the run with ``sparkdl plan``'s model before it starts (log it, keep it in
        metrics.json beside the measured epoch time); the first run of a model measures it.
    """

    dataset: str = "data/prepared/classification"
    output: str = "runs/train"
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = field(default=5, metadata={"min": 1})
    batch_size: int = field(default=256, metadata={"min": 1})
    learning_rate: float = field(default=0.001, metadata={"min": 0.0})
    scale_lr: bool = True
    warmup_epochs: float = field(default=1.0, metadata={"min": 0.0})
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    early_stopping_patience: int = field(default=0, metadata={"min": 0})
    # How the ranks combine their work (sparkdl.train.modes states each mode's rules):
    # sync (every step), accumulate (accumulate_steps passes per exchange), local_sgd (each
    # rank steps alone; weights and optimizer state averaged every local_sgd_period steps and
    # at each epoch's end; sync for the local_sgd_warmup_epochs first epochs: post-local SGD).
    mode: Literal["sync", "accumulate", "local_sgd"] = "sync"
    accumulate_steps: int = field(default=1, metadata={"min": 1})
    local_sgd_period: int = field(default=8, metadata={"min": 1})
    local_sgd_warmup_epochs: int = field(default=0, metadata={"min": 0})
    # The gradient exchange of sync and accumulate (sparkdl.train.exchange): none (fp32),
    # fp16, topk (topk_density of each tensor's entries, error feedback), powersgd (rank
    # powersgd_rank, error feedback; needs matrix-shaped weights).
    compression: Literal["none", "fp16", "topk", "powersgd"] = "none"
    topk_density: float = 0.01
    powersgd_rank: int = field(default=4, metadata={"min": 1})
    max_attempts: int = field(default=3, metadata={"min": 1})
    seed: int = 42
    reader_workers: int = field(default=2, metadata={"min": 1})
    # "memory" reads each rank's shard once into RAM (small data, benchmarks); "parquet"
    # streams row groups through petastorm every epoch.
    data_source: Literal["parquet", "memory"] = "parquet"
    shuffle_buffer: int = field(default=10_000, metadata={"min": 0})
    tensorboard: bool = True
    predict: bool = True
    fault: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.topk_density <= 1.0:
            raise BadInputError(
                f"train.topk_density is {self.topk_density!r}; allowed: 0 < density <= 1 (the "
                "share of each tensor's entries sent per step, e.g. 0.01)"
            )
        if self.mode == "local_sgd" and self.compression != "none":
            raise BadInputError(
                f"train.compression={self.compression} does not apply to train.mode=local_sgd "
                "(it averages weights, not gradients); allowed there: none. Use mode sync or "
                "accumulate to compress gradients"
            )
        if self.mode != "accumulate" and self.accumulate_steps != 1:
            raise BadInputError(
                f"train.accumulate_steps={self.accumulate_steps} needs train.mode=accumulate "
                f"(train.mode is {self.mode}); set both, or leave accumulate_steps at 1"
            )
