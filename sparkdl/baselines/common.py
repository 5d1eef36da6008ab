"""What the baselines share: fault injection in tasks, tree reduction, and result files."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sparkdl.config.baselines import BlockFaultConfig

if TYPE_CHECKING:
    from sparkdl.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)

# Set in barrier-engine tasks to the engine's attempt (Spark's own attempt number restarts at 0
# when the driver re-runs a failed barrier stage as a new job).
ENGINE_ATTEMPT: int | None = None


def maybe_fail(fault: BlockFaultConfig, *, partition: int, iteration: int) -> None:
    """Raise in the configured task on its first attempt (see :class:`BlockFaultConfig`)."""
    if fault.partition != partition or fault.iteration != iteration:
        return
    from pyspark import TaskContext

    ctx = TaskContext.get()
    attempt = ENGINE_ATTEMPT if ENGINE_ATTEMPT is not None else (ctx.attemptNumber() if ctx else 1)
    if attempt == 0:
        raise RuntimeError(
            f"injected fault: partition {partition} at iteration {iteration} (attempt 0); "
            "set fault.partition=-1 to turn it off"
        )


def dataset_card(dataset: PreparedDataset) -> dict[str, Any]:
    """What a baseline model file records about the data it was fitted on."""
    return {
        "feature_names": dataset.feature_names,
        "label_values": None
        if dataset.manifest.label_values is None
        else list(dataset.manifest.label_values),
        "dataset": dataset.path,
        "dataset_version": dataset.manifest.version,
        "featurizer": dataset.featurizer_path,
    }
