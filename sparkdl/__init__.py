"""sparkdl: Spark prepares the data, a barrier stage of Horovod ranks trains on it.

The import name ``sparkdl`` is shared with an old Databricks package (preinstalled on Databricks
ML runtimes before 16.0). ``__project__`` tells the two apart: code that must be sure it runs
this project's package calls :func:`sparkdl.identity.require_this_project`.

``sparkdl.run`` and ``sparkdl.Distributor`` (:mod:`sparkdl.distributor`) run a function of
yours on Horovod ranks; ``sparkdl.prepare(df)`` and ``sparkdl.run_step(name)`` (:mod:`sparkdl.api`)
run the steps of the CLI and the pipeline (:mod:`sparkdl.steps`). They are imported on first
use, so ``import sparkdl`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__project__ = "sparkdl-pipeline"

__all__ = ["Distributor", "__project__", "__version__", "prepare", "run", "run_step"]


def __getattr__(name: str) -> Any:
    if name in ("run", "Distributor"):
        from sparkdl import distributor

        return getattr(distributor, name)
    if name in ("prepare", "run_step"):
        from sparkdl import api

        return getattr(api, name)
    raise AttributeError(f"module 'sparkdl' has no attribute {name!r}")
