"""MLflow tracking of sparkdl runs (config section ``tracking``).

- :mod:`sparkdl.tracking.uri`: the tracking URI resolved, redacted for logs, checked at start;
- :mod:`sparkdl.tracking.params`: the config as params, and the tags (run id, dataset
  version, code version);
- :mod:`sparkdl.tracking.metrics`: a step's ``metrics.json`` as per-epoch and final metrics;
- :mod:`sparkdl.tracking.runs`: parent and child runs, logging from the driver;
- :mod:`sparkdl.tracking.pyfunc`: the trained model as an MLflow pyfunc model on raw rows.

Importing this package imports no MLflow: with tracking off, or mlflow missing and
``tracking.mlflow`` unset, nothing of MLflow is loaded and nothing changes.
"""

from sparkdl.tracking.runs import PipelineRun, Tracker, open_tracking

__all__ = ["PipelineRun", "Tracker", "open_tracking"]
