"""What a step leaves behind, as tracking reads it: the output records and result files.

A pipeline step returns its output record (:mod:`sparkdl.pipeline.outputs`); a single command
leaves the same files where its config says, and :func:`command_output` builds the record a
pipeline step would have returned, so both are tracked by one code path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sparkdl.config.schema import SparkdlConfig

logger = logging.getLogger(__name__)


def command_output(name: str, cfg: SparkdlConfig) -> Any:
    """The output record a single command leaves, as its pipeline step would record it (None
    for the commands that are not tracked: generate, prepare, predict, pipeline, checks)."""
    from sparkdl.pipeline import outputs as O
    from sparkdl.store import parse_location

    def under(folder: str, *names: str) -> str:
        return parse_location(folder, key=f"{name}.output").child(*names).uri

    if name == "train":
        out = cfg.train.output
        return O.TrainOutput(model=under(out, "model"), metrics=under(out, "metrics.json"))
    if name == "sgd":
        return O.SgdOutput(metrics=under(cfg.sgd.output, "metrics.json"))
    if name == "kmeans":
        return O.KmeansOutput(metrics=under(cfg.kmeans.output, "metrics.json"))
    if name == "evaluate":
        return O.EvaluateOutput(metrics=under(cfg.evaluate.output, "metrics.json"))
    return None


def dataset_version(doc: Mapping[str, Any]) -> str | None:
    """The dataset version a result document names, if any.

    Examples
    --------
    >>> dataset_version({"dataset": {"root": "/d", "version": "v7"}})
    'v7'
    >>> dataset_version({"dataset": "file:/d/versions/v8"}), dataset_version({"dataset_version": "v9"})
    ('v8', 'v9')
    """
    ds = doc.get("dataset")
    if isinstance(ds, Mapping) and isinstance(ds.get("version"), str):
        return ds["version"]
    if isinstance(ds, str) and "/versions/" in ds:
        return ds.rstrip("/").rsplit("/", 1)[1]
    version = doc.get("dataset_version")
    return version if isinstance(version, str) else None


def read_json(spark: SparkSession, path: str, *, quiet: bool = False) -> dict[str, Any]:
    """A result file through the driver's store ({} when it is missing)."""
    from sparkdl.store import parse_location
    from sparkdl.store.hadoop import HadoopStore

    folder, name = parse_location(path).parent()
    try:
        return json.loads(HadoopStore(spark, folder).read_bytes(name))
    except FileNotFoundError:
        if not quiet:
            logger.warning("result file %s is missing; its metrics are not tracked", path)
        return {}


def model_json_version(spark: SparkSession, fields: Mapping[str, Any]) -> str | None:
    """A baseline's dataset version, from the ``model.json`` beside its ``metrics.json``."""
    from sparkdl.store import parse_location

    folder, _ = parse_location(fields["metrics"]).parent()
    return dataset_version(read_json(spark, folder.child("model.json").uri, quiet=True))
