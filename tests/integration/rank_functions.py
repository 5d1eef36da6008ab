"""Functions the integration tests run on Horovod ranks (importable on executors via PYTHONPATH)."""

from __future__ import annotations

import os
import sys


def rank_and_env() -> dict[str, str]:
    """Return this rank's Horovod variables without initialising Horovod."""
    keys = (
        "CUDA_VISIBLE_DEVICES",
        "HOROVOD_GPU_OPERATIONS",
        "HOROVOD_RANK",
        "HOROVOD_SIZE",
        "HOROVOD_LOCAL_RANK",
        "HOROVOD_GLOO_IFACE",
        "TF_NUM_INTRAOP_THREADS",
    )
    return {k: os.environ.get(k, "") for k in keys}


def fail_on_rank(bad_rank: int) -> int:
    """Print a marker and fail on one rank; the others return their rank."""
    rank = int(os.environ["HOROVOD_RANK"])
    if rank == bad_rank:
        print(f"about to fail on purpose on rank {rank}", flush=True)
        raise ValueError(f"injected failure on rank {rank}")
    return rank


def exit_on_rank(bad_rank: int, code: int) -> int:
    """Exit hard with ``code`` on one rank."""
    rank = int(os.environ["HOROVOD_RANK"])
    if rank == bad_rank:
        sys.exit(code)
    return rank


def env_value(name: str) -> str | None:
    """Return one environment variable as the rank's process sees it."""
    return os.environ.get(name)


def cpu_allocator_stats() -> dict[str, int] | None:
    """Bytes TensorFlow's CPU allocator reports after a 4 MB tensor; None when it keeps no stats.

    Only the BFC allocator keeps statistics; TensorFlow's default CPU allocator does not.
    """
    import tensorflow as tf

    tensor = tf.ones([1 << 20], tf.float32)
    try:
        stats = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return None
    del tensor
    return {k: int(v) for k, v in stats.items()}


def vector_only_model(input_dim: int, num_classes: int) -> object:
    """A model whose weights are all vector-shaped (a 1 x classes kernel): PowerSGD has no
    matrix to compress in it."""
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(input_dim,))
    mean = tf.keras.layers.Lambda(lambda x: tf.reduce_mean(x, axis=1, keepdims=True))(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(mean))
