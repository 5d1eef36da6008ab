"""The trained model as an MLflow pyfunc model that scores raw rows.

Its artifacts are the exported SavedModel (with its card, ``sparkdl_model.json``) and a copy
of the dataset version it was trained on, reduced to what inference needs: ``manifest.json``
(the declared columns), ``_SUCCESS`` and the fitted ``featurizer/``. ``predict`` takes a pandas
DataFrame of raw input columns (as ``prepare.input`` holds them; the label may be left out)
and runs the serving code path unchanged: :func:`sparkdl.serve.predict.featurize_raw` (the
validation and featurizer of ``sparkdl prepare``) then
:func:`sparkdl.serve.predict.predict_frame` (the scoring of ``sparkdl predict``), so what the
pyfunc model says cannot drift from what ``sparkdl predict`` says.

Scoring needs a SparkSession (the featurizer is a Spark ML PipelineModel): the active one, or a
``local[*]`` session started on first use. Rows that fail validation get no prediction, as in
``sparkdl predict``; the id column, when the dataset declares one, says which rows were scored.

Examples
--------
>>> import mlflow  # doctest: +SKIP
>>> model = mlflow.pyfunc.load_model("runs:/<train run id>/model")  # doctest: +SKIP
>>> model.predict(raw_rows)[["id", "prediction"]].head(2)  # doctest: +SKIP
   id  prediction
0   3           1
1   7           0
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd

from sparkdl.errors import BadInputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

ARTIFACT_PATH = "model"
MODEL = "model"
DATASET = "dataset"
_FROM_CODE = """\
# The sparkdl pyfunc model (sparkdl.tracking.pyfunc.SparkdlPyfunc); needs sparkdl installed.
from mlflow.models import set_model

from sparkdl.tracking.pyfunc import SparkdlPyfunc

set_model(SparkdlPyfunc())
"""
_REQUIREMENTS = (
    "sparkdl-pipeline",
    "mlflow-skinny",
    "tensorflow-cpu",
    "tensorflow",
    "pyspark",
    "pandas",
    "numpy",
    "pyarrow",
)


def _session() -> SparkSession:
    """The active SparkSession, else a local one for this process (kept for later calls)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from sparkdl.config.schema import SparkConfig
    from sparkdl.session import build_session

    logger.info("no active SparkSession: starting local[*] to featurize and score rows")
    return build_session(SparkConfig(profile="local", master="local[*]", app_name="sparkdl-pyfunc"))


def score_rows(
    rows: pd.DataFrame,
    *,
    model: str,
    dataset: str,
    batch_size: int = 4096,
    spark: SparkSession | None = None,
) -> pd.DataFrame:
    """Featurize raw ``rows`` with ``dataset``'s featurizer and score them with ``model``.

    Parameters
    ----------
    rows : pandas.DataFrame
        Raw input columns, as declared in the dataset's ``prepare.columns`` (label optional).
    model : str
        A model folder written by ``sparkdl train``.
    dataset : str
        The dataset version it was trained on (or the pyfunc model's reduced copy).
    batch_size : int
        Rows per prediction batch.
    spark : SparkSession, optional
        Default: the active session, else a local one.

    Returns
    -------
    pandas.DataFrame
        One row per valid input row, in input order: the id column (when declared), the label
        (when given), ``prediction`` and ``probability``.

    Raises
    ------
    BadInputError
        Columns that do not match the dataset's, or a model trained on other features.

    Examples
    --------
    >>> score_rows(raw, model="runs/train/model", dataset="data/prepared/x")  # doctest: +SKIP
    """
    from sparkdl.config.data import SourceConfig
    from sparkdl.data.dataset import open_dataset
    from sparkdl.serve.predict import featurize_raw, model_info, predict_frame

    spark = spark or _session()
    ds = open_dataset(spark, dataset)
    info = model_info(spark, path=model)
    if info.feature_dim != ds.feature_dim:
        raise BadInputError(
            f"{model} expects {info.feature_dim} features but {ds.path} makes {ds.feature_dim}; "
            "score with the dataset version the model was trained on"
        )
    # A temporary view is a catalog table to prepare's reader: the frame input path, unchanged.
    view = f"sparkdl_pyfunc_{uuid.uuid4().hex}"
    _missing_as_null(spark.createDataFrame(rows)).createOrReplaceTempView(view)
    try:
        featurized = featurize_raw(spark, raw=SourceConfig(table=view), dataset=ds)
        scored = predict_frame(featurized, info=info, batch_size=batch_size).drop("features")
        out = scored.toPandas()
    finally:
        spark.catalog.dropTempView(view)
    if len(out) != len(rows):
        logger.warning(
            "%d of %d rows failed validation and have no prediction (as in sparkdl predict); "
            "declare an id column (prepare.columns.id) to tell the scored rows apart",
            len(rows) - len(out),
            len(rows),
        )
    return out


def _missing_as_null(frame: Any) -> Any:
    """pandas writes a missing number as NaN: make it null, as an empty CSV field reads."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    return frame.select(
        *[
            F.when(~F.isnan(F.col(f"`{f.name}`")), F.col(f"`{f.name}`")).alias(f.name)
            if isinstance(f.dataType, DoubleType | FloatType)
            else F.col(f"`{f.name}`")
            for f in frame.schema.fields
        ]
    )


class SparkdlPyfunc(mlflow.pyfunc.PythonModel):
    """The pyfunc model: raw rows in, ``prediction`` and ``probability`` out (see the module)."""

    def load_context(self, context: Any) -> None:
        """Keep the local paths of the SavedModel and the dataset copy, and the batch size."""
        self._model = context.artifacts[MODEL]
        self._dataset = context.artifacts[DATASET]
        self.batch_size = int((context.model_config or {}).get("batch_size", 4096))

    # MLflow reads the annotation of model_input: a DataFrame means "no schema to check"
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score a pandas DataFrame of raw rows (see :func:`score_rows`)."""
        rows = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return score_rows(
            rows, model=self._model, dataset=self._dataset, batch_size=self.batch_size
        )


def _copy_folder(spark: SparkSession, source: str, target: Path) -> None:
    """Copy the folder ``source`` (a path or a store URI) to the local ``target``."""
    from sparkdl.data.fs import HadoopFS
    from sparkdl.store import parse_location

    posix = parse_location(source).posix
    if posix is not None and Path(posix).is_dir():
        shutil.copytree(posix, target)
        return
    fs = HadoopFS(spark)
    root = fs.qualify(source).rstrip("/") + "/"
    for f in fs.list_files(root):
        dest = target / f.path[len(root) :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(fs.read_bytes(f.path))


def _dataset_copy(spark: SparkSession, dataset_version: str, target: Path) -> None:
    """What inference needs of a dataset version: manifest, ``_SUCCESS``, featurizer."""
    from sparkdl.data.dataset import SUCCESS, open_dataset
    from sparkdl.data.fs import HadoopFS
    from sparkdl.data.manifest import MANIFEST

    ds = open_dataset(spark, dataset_version)
    target.mkdir(parents=True)
    manifest = HadoopFS(spark).read_bytes(f"{ds.path}/{MANIFEST}")
    (target / MANIFEST).write_bytes(manifest)  # the published bytes, unchanged
    _copy_folder(spark, ds.featurizer_path, target / ds.manifest.featurizer)
    (target / SUCCESS).write_bytes(b"")


def requirements() -> list[str]:
    """Pins of the installed packages the pyfunc model needs (those that are installed).

    Examples
    --------
    >>> any(r.startswith("pyspark==") for r in requirements())
    True
    """
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def save_pyfunc(spark: SparkSession, *, model: str, path: Path, batch_size: int = 4096) -> Path:
    """Write the pyfunc model of the trained ``model`` folder into the new local ``path``.

    Raises
    ------
    BadInputError
        When ``model`` is not a model folder written by ``sparkdl train``.

    Examples
    --------
    >>> save_pyfunc(spark, model="runs/train/model", path=Path("/tmp/m"))  # doctest: +SKIP
    PosixPath('/tmp/m')
    """
    from sparkdl.serve.predict import model_info
    from sparkdl.train.card import local_model

    info = model_info(spark, path=model)
    with tempfile.TemporaryDirectory(prefix="sparkdl-pyfunc-") as tmp:
        dataset = Path(tmp) / DATASET
        _dataset_copy(spark, info.dataset_version_path, dataset)
        # "models from code": the model is this script, not a pickled object
        code = Path(tmp) / "sparkdl_pyfunc_model.py"
        code.write_text(_FROM_CODE)
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(code),
            model_config={"batch_size": batch_size},
            artifacts={MODEL: local_model(info.path, cache=tmp), DATASET: str(dataset)},
            # given, so MLflow does not load the model in a subprocess to infer them
            pip_requirements=requirements(),
            metadata={"dataset_version": Path(info.dataset_version_path).name},
        )
    return path
