"""Atomic per-epoch checkpoints written by rank 0 and read by the driver to resume.

Layout of ``<output>/checkpoints``::

    epoch-0003/ckpt.*       tf.train.Checkpoint of the model and the optimizer state
    checkpoint.json         the last complete checkpoint: epoch, folder, SHA-256 of each file,
                            and the history up to that epoch; written last, replaced atomically

A checkpoint folder is written under a temporary name and renamed when complete, so a crash
mid-write leaves ``checkpoint.json`` pointing at the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError

MANIFEST = "checkpoint.json"


@dataclass(frozen=True)
class CheckpointInfo:
    """The last complete checkpoint: resume after ``epoch`` from ``path``."""

    epoch: int
    path: str
    history: list[dict[str, float]]


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for f in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.name] = h.hexdigest()
    return out


def write_checkpoint(
    checkpoint: Any, *, root: str, epoch: int, history: list[dict[str, float]]
) -> str:
    """Write ``checkpoint`` (a ``tf.train.Checkpoint``) for ``epoch`` atomically; return its folder.

    Examples
    --------
    >>> write_checkpoint(ckpt, root="runs/x/checkpoints", epoch=0, history=[])  # doctest: +SKIP
    'runs/x/checkpoints/epoch-0000'
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{epoch:04d}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    checkpoint.write(str(tmp / "ckpt"))
    files = _digest(tmp)
    final = base / f"epoch-{epoch:04d}"
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    doc = {"epoch": epoch, "folder": final.name, "files": files, "history": history}
    manifest_tmp = base / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    manifest_tmp.write_text(json.dumps(doc, indent=1))
    os.replace(manifest_tmp, base / MANIFEST)
    for old in base.glob("epoch-*"):
        if old.name != final.name and old.name < final.name:
            shutil.rmtree(old, ignore_errors=True)
    return str(final)


def latest_checkpoint(root: str) -> CheckpointInfo | None:
    """Return the last complete, checksum-verified checkpoint under ``root``, if any.

    Raises
    ------
    RuntimeError
        When ``checkpoint.json`` names files that are missing or whose checksum differs.

    Examples
    --------
    >>> latest_checkpoint("runs/none") is None
    True
    """
    manifest = Path(root) / MANIFEST
    if not manifest.exists():
        return None
    doc = json.loads(manifest.read_text())
    folder = Path(root) / doc["folder"]
    if not folder.is_dir() or _digest(folder) != doc["files"]:
        raise BadInputError(
            f"checkpoint {folder} does not match the checksums in {manifest}: it was changed or "
            "damaged. Delete the checkpoints folder to start over, or restore it."
        )
    return CheckpointInfo(
        epoch=int(doc["epoch"]), path=str(folder / "ckpt"), history=list(doc["history"])
    )
