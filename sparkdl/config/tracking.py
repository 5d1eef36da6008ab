"""Config section ``tracking``: logging runs to MLflow (:mod:`sparkdl.tracking`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sparkdl.errors import BadInputError


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking: params, per-epoch metrics, tags and the model of each run.

    A pipeline run logs one parent run with a child run per step; a single command (``sparkdl
    train``, ``sgd``, ``kmeans``, ``evaluate``) logs one run. Everything is logged from the
    driver after a step, never from the ranks. The tracking URI is checked when the run
    starts, before any Spark work: one that cannot be reached fails the run there.

    Attributes
    ----------
    mlflow : bool | None
        Log runs to MLflow: true, false, or null for on exactly when mlflow is importable
        (mlflow-skinny is installed by scripts/setup.sh).
    tracking_uri : str | None
        Any MLflow tracking URI (file:/path, http(s)://host:port, databricks); a plain path is
        a local file store, made absolute. Null: $MLFLOW_TRACKING_URI when set, else ./mlruns
        under the driver's working folder.
    experiment : str
        The MLflow experiment the runs go to (created when missing).
    log_model : bool
        Log the trained model as an MLflow pyfunc model (the SavedModel with the dataset's
        featurizer) that mlflow.pyfunc loads and scores on raw rows.
    check_timeout_s : float
        Seconds the start-up check of a tracking server may wait for an answer.
    """

    mlflow: bool | None = None
    tracking_uri: str | None = None
    experiment: str = "sparkdl"
    log_model: bool = True
    check_timeout_s: float = field(default=10.0, metadata={"min": 0.1, "max": 300.0})

    def __post_init__(self) -> None:
        if not self.experiment.strip():
            raise BadInputError(
                "tracking.experiment is empty; name the MLflow experiment, for example "
                "--set tracking.experiment=sparkdl"
            )
        if self.tracking_uri is not None and not self.tracking_uri.strip():
            raise BadInputError(
                "tracking.tracking_uri is empty; give a tracking URI such as "
                "http://127.0.0.1:5000 or a folder for a local file store, or leave it unset "
                "for ./mlruns"
            )
