"""Atomic, idempotent publishing of prepared dataset versions.

A run writes everything under ``_staging/<token>``, verifies it, writes ``manifest.json`` and
then ``_SUCCESS``, renames the folder into ``versions/`` and only then swaps the ``_CURRENT``
pointer. A crash at any point leaves the previously published version as the one readers see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
import uuid
from pathlib import Path
from typing import Any

import sparkdl
from sparkdl.data.dataset import POINTER, SUCCESS, VERSIONS
from sparkdl.data.fs import HadoopFS
from sparkdl.data.manifest import DatasetManifest, write_manifest

logger = logging.getLogger(__name__)


def code_version() -> str:
    """Return ``sparkdl <version>`` plus the git commit when running from a checkout.

    Examples
    --------
    >>> code_version().startswith("sparkdl ")
    True
    """
    here = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"sparkdl {sparkdl.__version__}" + (f" ({commit})" if commit else "")


def config_hash(config: dict[str, Any]) -> str:
    """Hash a config section canonically (sorted keys).

    Examples
    --------
    >>> config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def version_key(*, input_fingerprint: str, config_digest: str) -> str:
    """Identify a dataset version by its input listing and its config.

    The code version is recorded in the manifest but left out of the key, so upgrading sparkdl
    does not rebuild data by itself (``--force`` does).

    Examples
    --------
    >>> len(version_key(input_fingerprint="a", config_digest="b"))
    16
    """
    return hashlib.sha256(f"{input_fingerprint}\n{config_digest}".encode()).hexdigest()[:16]


def published_version(fs: HadoopFS, root: str) -> str | None:
    """Return the version folder name ``_CURRENT`` points at, if any."""
    pointer = f"{root}/{POINTER}"
    if not fs.exists(pointer):
        return None
    return str(json.loads(fs.read_text(pointer))["version"])


def find_published(fs: HadoopFS, root: str, key: str) -> str | None:
    """Return the published version folder built from ``key``, if the pointer is on it."""
    current = published_version(fs, root)
    if (
        current
        and current.endswith(f"-{key}")
        and fs.exists(f"{root}/{VERSIONS}/{current}/{SUCCESS}")
    ):
        return current
    return None


def new_staging(fs: HadoopFS, root: str) -> str:
    """Create and return a fresh staging folder for one run."""
    path = (
        f"{root}/_staging/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    )
    fs.mkdirs(path)
    return path


def seal(fs: HadoopFS, staging: str, manifest: DatasetManifest) -> None:
    """Write ``manifest.json`` and then ``_SUCCESS`` (the order readers rely on)."""
    write_manifest(fs, staging, manifest)
    fs.write_text(f"{staging}/{SUCCESS}", "")


def version_name(key: str) -> str:
    """Name a new version folder: creation time (sorts by age) and the version key.

    Examples
    --------
    >>> version_name("abc").endswith("-abc")
    True
    """
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{key}"


def publish(fs: HadoopFS, *, root: str, staging: str, name: str, keep: int) -> str:
    """Move a verified staging folder into ``versions/`` and point ``_CURRENT`` at it.

    Parameters
    ----------
    fs : HadoopFS
    root : str
        Dataset root.
    staging : str
        Folder holding the complete version with manifest and ``_SUCCESS``.
    name : str
        The version folder name (see :func:`version_name`).
    keep : int
        Published versions to keep (the new one included); older ones are deleted.

    Returns
    -------
    str
        The new version folder's name.
    """
    fs.mkdirs(f"{root}/{VERSIONS}")
    target = f"{root}/{VERSIONS}/{name}"
    fs.rename(staging, target)
    pointer = {"version": name, "published_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    fs.write_text(f"{root}/{POINTER}", json.dumps(pointer))
    logger.info("published %s", target)
    _prune(fs, root=root, current=name, keep=keep)
    return name


def _prune(fs: HadoopFS, *, root: str, current: str, keep: int) -> None:
    versions = [d.rstrip("/").rsplit("/", 1)[-1] for d in fs.list_dirs(f"{root}/{VERSIONS}")]
    older = sorted((v for v in versions if v != current), reverse=True)
    for stale in older[max(0, keep - 1) :]:
        fs.delete(f"{root}/{VERSIONS}/{stale}")
        logger.info("deleted old version %s (prepare.keep_versions=%d)", stale, keep)


def clean_staging(fs: HadoopFS, root: str) -> None:
    """Remove staging folders left by crashed runs (one writer per dataset root)."""
    for leftover in fs.list_dirs(f"{root}/_staging"):
        logger.warning("removing %s left by an interrupted run", leftover)
        fs.delete(leftover)
