"""Saving and loading the estimator and its model as Spark ML stages (``MLWritable`` /
``MLReadable``), on any Hadoop file system.

A saved stage is a folder with Spark ML's ``metadata/`` (class, uid, params: what
``DefaultParamsReader`` reads, so ``Pipeline`` and ``PipelineModel`` save and load it as one of
their stages). A saved :class:`~sparkdl.ml.KerasEstimator` whose model is a Python function
adds ``model_function.pkl`` (cloudpickle: load only folders you trust, as with any pickle). A
saved :class:`~sparkdl.ml.KerasModel` is self-contained: ``model/`` (a copy of the SavedModel
folder), ``featurizer/`` (the fitted Spark ML pipeline) and ``state.json``, the
:class:`~sparkdl.ml.model.ModelState` record, written and read here only.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

from sparkdl.contract import check_format, from_plain, to_plain

if TYPE_CHECKING:
    from sparkdl.ml.estimator import KerasEstimator
    from sparkdl.ml.model import KerasModel

FORMAT = "sparkdl-ml-model/1"
STATE = "state.json"
FUNCTION = "model_function.pkl"
_FIX = "save the model again with this sparkdl (KerasModel.write().overwrite().save(path))"


def _fs(writer: MLWriter | MLReader) -> Any:
    from sparkdl.data.fs import HadoopFS

    return HadoopFS(writer.sparkSession)


def _plain_params(instance: Any) -> dict[str, Any]:
    """The explicitly set params, without a model function (it is pickled beside them)."""
    return {
        p.name: v for p, v in instance._paramMap.items() if not (p.name == "model" and callable(v))
    }


class EstimatorWriter(MLWriter):
    """Writes a :class:`~sparkdl.ml.KerasEstimator`'s params (and model function)."""

    def __init__(self, instance: KerasEstimator) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:  # noqa: N802 (Spark ML's name)
        """Write ``metadata/`` and, for a function model, ``model_function.pkl``."""
        import cloudpickle

        fn = self.instance.model_function()
        DefaultParamsWriter.saveMetadata(
            self.instance,
            path,
            self.sparkSession.sparkContext,
            extraMetadata={"modelFunction": fn is not None},
            paramMap=_plain_params(self.instance),
        )
        if fn is not None:
            _fs(self).write_bytes(f"{path}/{FUNCTION}", cloudpickle.dumps(fn))


class EstimatorReader(MLReader):
    """Reads what :class:`EstimatorWriter` wrote."""

    def __init__(self, cls: type[KerasEstimator]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> KerasEstimator:
        """The estimator saved at ``path``, with its uid and params."""
        import cloudpickle

        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession.sparkContext)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        if metadata.get("modelFunction"):
            instance._set(model=cloudpickle.loads(_fs(self).read_bytes(f"{path}/{FUNCTION}")))
        return instance


class ModelWriter(MLWriter):
    """Writes a fitted :class:`~sparkdl.ml.KerasModel` into one self-contained folder."""

    def __init__(self, instance: KerasModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:  # noqa: N802 (Spark ML's name)
        """Write ``metadata/``, ``model/``, ``featurizer/`` and ``state.json``."""
        fs = _fs(self)
        root = fs.qualify(path).rstrip("/")
        state = self.instance.state
        DefaultParamsWriter.saveMetadata(
            self.instance,
            root,
            self.sparkSession.sparkContext,
            paramMap=_plain_params(self.instance),
        )
        fs.copy(state.model, f"{root}/model")
        self.instance.featurizer().write().save(f"{root}/featurizer")
        plain = to_plain(replace(state, model="model", featurizer="featurizer"))
        fs.write_text(f"{root}/{STATE}", json.dumps({"format": FORMAT, **plain}, indent=1))


class ModelReader(MLReader):
    """Reads what :class:`ModelWriter` wrote."""

    def __init__(self, cls: type[KerasModel]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> KerasModel:
        """The model saved at ``path``; it scores from the copies in that folder."""
        from sparkdl.errors import BadInputError
        from sparkdl.ml.model import ModelState

        fs = _fs(self)
        root = fs.qualify(path).rstrip("/")
        metadata = DefaultParamsReader.loadMetadata(root, self.sparkSession.sparkContext)
        source = f"{root}/{STATE}"
        if not fs.exists(source):
            raise BadInputError(f"{root} holds no {STATE}: it is not a saved KerasModel; {_FIX}")
        try:
            data = json.loads(fs.read_text(source))
        except ValueError as exc:
            raise BadInputError(f"{source} is not JSON ({exc}); {_FIX}") from exc
        check_format(data.pop("format", None), supported=(FORMAT,), source=source, fix=_FIX)
        state = from_plain(ModelState, data, source=source, fix=_FIX)
        state = replace(
            state, model=f"{root}/{state.model}", featurizer=f"{root}/{state.featurizer}"
        )
        instance = self.cls(state=state)
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        return instance
