"""What a run records besides metrics: the config as MLflow params, and the run's tags.

Params are the config flattened to dotted keys (``train.model.hidden``), within MLflow's
limits: keys of allowed characters up to 250 long, values up to 6000 characters (longer ones
are cut, and say so). Values under secret-looking keys (``...secret...``, ``...password...``,
``...token...``, access keys) are masked: a Spark conf can carry cloud credentials.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sparkdl.config.loader import to_dict
from sparkdl.config.schema import SparkdlConfig

MAX_KEY = 250
MAX_VALUE = 6000
MASK = "***"
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /:]")
_SECRET_KEY = re.compile(
    r"(?i)(secret|password|passwd|token|credential|access[._-]?key|private[._-]?key|sas)"
)

# The config sections a pipeline step's child run records as its params.
STEP_SECTIONS: dict[str, tuple[str, ...]] = {
    "generate": ("generate",),
    "prepare": ("prepare",),
    "train": ("train", "launch"),
    "sgd": ("sgd",),
    "kmeans": ("kmeans",),
    "evaluate": ("evaluate",),
    "report": ("pipeline",),
}

TAG_RUN_ID = "sparkdl.run_id"
TAG_DATASET = "sparkdl.dataset_version"
TAG_CODE = "sparkdl.code_version"
TAG_STEP = "sparkdl.step"
TAG_RUN_DIR = "sparkdl.run_dir"
TAG_GIT = "mlflow.source.git.commit"
TAG_PARENT = "mlflow.parentRunId"
TAG_NAME = "mlflow.runName"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every leaf of nested mappings as ``(dotted key, text)``; lists and null as JSON.

    Examples
    --------
    >>> dict(flatten({"train": {"model": {"head": [64, 32]}, "dataset": None}}))
    {'train.model.head': '[64, 32]', 'train.dataset': 'null'}
    """
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{full}.")
        else:
            yield full, _text(value)


def mlflow_param(key: str, value: str) -> tuple[str, str]:
    """``(key, value)`` within MLflow's limits, a secret-looking key's value masked.

    Examples
    --------
    >>> mlflow_param("spark.conf.spark.hadoop.fs.s3a.secret.key", "AKIA123")
    ('spark.conf.spark.hadoop.fs.s3a.secret.key', '***')
    >>> mlflow_param("launch.env.A=B", "1")
    ('launch.env.A_B', '1')
    >>> k, v = mlflow_param("x", "y" * 7000); len(v), v[-25:]
    (6000, '(cut: 7000 characters)...')
    """
    if _SECRET_KEY.search(key):
        value = MASK
    key = _BAD_KEY_CHARS.sub("_", key)[:MAX_KEY]
    if len(value) > MAX_VALUE:
        note = f"(cut: {len(value)} characters)..."
        value = value[: MAX_VALUE - len(note)] + note
    return key, value


def config_params(cfg: SparkdlConfig, *, sections: tuple[str, ...] | None = None) -> dict[str, str]:
    """The config (or only ``sections`` of it) as MLflow params.

    Examples
    --------
    >>> p = config_params(SparkdlConfig(), sections=("train",))
    >>> p["train.epochs"], p["train.model.kind"], all(k.startswith("train.") for k in p)
    ('5', 'mlp', True)
    """
    data = to_dict(cfg)
    if sections is not None:
        data = {s: data[s] for s in sections if s in data}
    return dict(mlflow_param(k, v) for k, v in flatten(data))


def git_commit() -> str | None:
    """The commit of the checkout this sparkdl runs from, or None outside a git checkout."""
    here = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def code_version(commit: str | None) -> str:
    """The code version tag: the git commit when there is one, else the package version.

    Examples
    --------
    >>> code_version("0123456789abcdef0123456789abcdef01234567")
    '0123456789abcdef0123456789abcdef01234567'
    >>> code_version(None).startswith("sparkdl ")
    True
    """
    import sparkdl

    return commit or f"sparkdl {sparkdl.__version__}"


def run_tags(
    *,
    run_id: str | None,
    dataset_version: str | None = None,
    step: str | None = None,
    commit: str | None = None,
) -> dict[str, str]:
    """The tags every run carries: sparkdl run id, dataset version, code version (and step).

    Examples
    --------
    >>> run_tags(run_id="r1", dataset_version="v2", commit=None)["sparkdl.dataset_version"]
    'v2'
    """
    tags = {TAG_CODE: code_version(commit)}
    if commit:
        tags[TAG_GIT] = commit
    if run_id:
        tags[TAG_RUN_ID] = run_id
    if dataset_version:
        tags[TAG_DATASET] = dataset_version
    if step:
        tags[TAG_STEP] = step
    return tags
