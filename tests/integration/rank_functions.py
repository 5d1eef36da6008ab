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
