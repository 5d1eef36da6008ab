"""The Python API's calls of registered steps (:mod:`sparkdl.steps`), for notebooks and jobs.

``sparkdl.prepare(df, config=cfg)`` is ``sparkdl prepare`` on a DataFrame; ``sparkdl.run_step``
runs any step by name with the options the CLI would give it. Both return the step's typed
output record, the one the pipeline stores in its run state.

Examples
--------
>>> out = sparkdl.prepare(df, config=cfg)  # doctest: +SKIP
>>> out.version, out.splits["train"]  # doctest: +SKIP
('20261203T101500000000-ab12cd34ef56ab78', 8011)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sparkdl.errors import BadInputError
from sparkdl.pipeline.outputs import PrepareOutput
from sparkdl.steps import StepOptions, run_step

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sparkdl.config.schema import SparkdlConfig

logger = logging.getLogger(__name__)

__all__ = ["prepare", "run_step"]


def prepare(
    frame: DataFrame | None = None,
    *,
    config: SparkdlConfig | None = None,
    spark: SparkSession | None = None,
    force: bool = False,
) -> PrepareOutput:
    """Validate, featurize, split and publish ``frame`` (or ``prepare.input``) as ``sparkdl
    prepare`` does, into ``config.prepare.output``.

    Parameters
    ----------
    frame : DataFrame, optional
        The rows to prepare, with the columns ``prepare.columns`` declares (or, with
        ``prepare.columns.infer``, only the label named). Default: ``prepare.input``.
    config : SparkdlConfig, optional
        Default: the defaults.
    spark : SparkSession, optional
        Default: ``frame``'s session, else the active one.
    force : bool
        Rebuild even when this input and config are published already.

    Returns
    -------
    PrepareOutput
        The dataset root, the version published (or found published) and rows per split.

    Raises
    ------
    BadInputError
        When ``frame`` is not a DataFrame, and whatever ``prepare`` refuses.
    """
    if frame is not None and not hasattr(frame, "sparkSession"):
        raise BadInputError(
            f"sparkdl.prepare(frame={type(frame).__name__}): give a pyspark DataFrame, or none "
            "to read prepare.input"
        )
    session = spark or (frame.sparkSession if frame is not None else None)
    result = run_step(
        "prepare", config=config, spark=session, options=StepOptions(force=force, frame=frame)
    )
    logger.info("%s", result.summary)
    if not isinstance(result.output, PrepareOutput):
        raise TypeError(f"prepare returned {type(result.output).__name__}")
    return result.output
