"""Spark ML stages: :class:`KerasEstimator` trains on Horovod ranks, :class:`KerasModel` scores.

Examples
--------
>>> from sparkdl.ml import KerasEstimator, KerasModel
>>> KerasEstimator(inputCols=["a", "b"], labelCol="y").getOrDefault("numWorkers")
2
"""

from sparkdl.ml.estimator import KerasEstimator
from sparkdl.ml.model import KerasModel

__all__ = ["KerasEstimator", "KerasModel"]
