"""Atomic per-epoch checkpoints written by rank 0 to the store, read by the driver to resume.

Layout of ``<train.output>/checkpoints`` (a POSIX path or any URI of :mod:`sparkdl.store`)::

    epoch-0003/ckpt.*       tf.train.Checkpoint of the model and the optimizer state
                            (epoch-0003-<launch>/ on object stores, which cannot rename folders)
    checkpoint.json         the pointer: the last complete checkpoint's epoch, folder, SHA-256
                            of each file and the history up to that epoch; written last
    fence.json              the one attempt allowed to publish here (:mod:`sparkdl.train.fence`)
    .publish.lock           held (flock) on mounted stores while an attempt publishes

Rank 0 writes each checkpoint into its node's staging folder, copies it to the store (under a
temporary name that is renamed when complete, where the store can rename) and then, while the
fence names its attempt, writes the pointer and prunes older checkpoints. A crash mid-write
leaves the pointer naming the previous checkpoint. On resume rank 0 copies the checkpoint back
to its node (it may be another node than the one that wrote it) and checks every checksum
before restoring; the driver checks the pointer, and on a mounted store the checksums too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError
from sparkdl.store import Store
from sparkdl.store.arrow import ArrowStore
from sparkdl.store.uri import parse_location
from sparkdl.train.fence import (
    FENCE,
    LOCK,
    NO_FENCE,
    Fence,
    FencedError,
    as_store,
    claim_fence,
    fenced,
)

__all__ = [
    "FENCE",
    "LOCK",
    "MANIFEST",
    "NO_FENCE",
    "CheckpointInfo",
    "Fence",
    "FencedError",
    "claim_fence",
    "fenced",
    "fetch_checkpoint",
    "latest_checkpoint",
    "publish_folder",
    "restore_checkpoint",
    "sync_folder",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

MANIFEST = "checkpoint.json"
# a published folder's files and their SHA-256, written last (the model, on object stores)
FILES = "_sparkdl_files.json"


@dataclass(frozen=True)
class CheckpointInfo:
    """The last complete checkpoint: resume after ``epoch``.

    ``path`` is the checkpoint's prefix on the store (a local path on a mounted store, else a
    URI); ``root``, ``folder`` and ``files`` (name to SHA-256) let a rank on any node copy it.
    """

    epoch: int
    path: str
    history: list[dict[str, float]]
    root: str = ""
    folder: str = ""
    files: dict[str, str] = field(default_factory=dict)


def _digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by its ``/``-separated relative name."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def _upload(store: ArrowStore, local: Path, rel: str, files: dict[str, str]) -> None:
    for name in files:
        store.put_file(local / name, f"{rel}/{name}")


def _where(store: Store, rel: str) -> str:
    loc = store.location.child(rel)
    return loc.posix if loc.posix is not None else loc.uri


def write_checkpoint(
    checkpoint: Any,
    *,
    root: str,
    epoch: int,
    history: list[dict[str, float]],
    fence: Fence,
    staging: str | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> str:
    """Write ``checkpoint`` (a ``tf.train.Checkpoint``) for ``epoch`` to the store under
    ``root``; return its folder. ``extra_files`` (name to bytes) go into the same folder and
    its checksums, e.g. every rank's residuals (:data:`sparkdl.train.modes.RANK_STATE`).

    The files are written in ``staging`` (this node's temporary folder) and copied to the store;
    the pointer and the pruning of older checkpoints happen only while ``fence`` is current.

    Raises
    ------
    FencedError
        When ``fence`` is no longer the current attempt's; nothing is published.

    Examples
    --------
    >>> fence = claim_fence("runs/x/checkpoints", attempt=0)  # doctest: +SKIP
    >>> write_checkpoint(ckpt, root=fence.root, epoch=0, history=[], fence=fence)  # doctest: +SKIP
    'runs/x/checkpoints/epoch-0000'
    """
    store = ArrowStore(root)
    final = f"epoch-{epoch:04d}"
    with tempfile.TemporaryDirectory(prefix="sparkdl-ckpt-", dir=staging) as tmpdir:
        local = Path(tmpdir)
        checkpoint.write(str(local / "ckpt"))
        for name, data in (extra_files or {}).items():
            (local / name).write_bytes(data)
        files = _digest(local)
        if not store.renames_atomically:  # a folder of its own, named by the pointer only
            final = f"{final}-{fence.launch_id[:8]}"
            _upload(store, local, final, files)
            with fenced(fence, store):
                _point(store, epoch=epoch, folder=final, files=files, history=history)
                _prune(store, keep=final, launch_id=fence.launch_id)
            return _where(store, final)
        tmp = f".tmp-{fence.launch_id[:12]}-{epoch:04d}-{uuid.uuid4().hex[:8]}"
        try:
            _upload(store, local, tmp, files)
            with fenced(fence, store):
                store.delete(final)
                store.move(tmp, final)
                _point(store, epoch=epoch, folder=final, files=files, history=history)
                _prune(store, keep=final, launch_id=fence.launch_id)
        finally:
            store.delete(tmp)
    return _where(store, final)


def _point(
    store: Store, *, epoch: int, folder: str, files: dict[str, str], history: list[Any]
) -> None:
    doc = {"epoch": epoch, "folder": folder, "files": files, "history": history}
    store.write_bytes(MANIFEST, json.dumps(doc, indent=1).encode())


def _prune(store: Store, *, keep: str, launch_id: str) -> None:
    """Remove other checkpoints and temporary folders other launches left (while fenced)."""
    mine = f".tmp-{launch_id[:12]}-"
    for name in store.list_names():
        other_epoch = name.startswith("epoch-") and name != keep
        if other_epoch or (name.startswith(".tmp-") and not name.startswith(mine)):
            store.delete(name)


def publish_folder(
    save: Callable[[str], None], *, target: str, fence: Fence, staging: str | None = None
) -> str:
    """Rank 0: ``save(path)`` into this node's staging folder, copy it to the store, then
    replace ``target`` with it while ``fence`` is current (the exported model).

    Where the store can rename, the copy goes to a temporary sibling that is renamed over
    ``target``; on an object store the files are copied into ``target`` and their list
    (``_sparkdl_files.json``, with checksums) is written last.

    Raises
    ------
    FencedError
        When ``fence`` is no longer current; ``target`` is left as it was.

    Examples
    --------
    >>> publish_folder(model.save, target="runs/x/model", fence=fence)  # doctest: +SKIP
    'runs/x/model'
    """
    parent, name = parse_location(target).parent()
    store = ArrowStore(parent)
    with tempfile.TemporaryDirectory(prefix="sparkdl-publish-", dir=staging) as tmpdir:
        local = Path(tmpdir) / name
        save(str(local))
        files = _digest(local)
        listing = json.dumps({"files": files}, indent=1).encode()
        if not store.renames_atomically:
            with fenced(fence):
                store.delete(name)
                _upload(store, local, name, files)
                store.write_bytes(f"{name}/{FILES}", listing)
            return _where(store, name)
        tmp = f".{name}.tmp-{fence.launch_id[:12]}-{uuid.uuid4().hex[:8]}"
        try:
            _upload(store, local, tmp, files)
            store.write_bytes(f"{tmp}/{FILES}", listing)
            with fenced(fence):
                old = f".{name}.old-{uuid.uuid4().hex[:8]}"
                if store.exists(name):
                    store.move(name, old)
                store.move(tmp, name)
                store.delete(old)
        finally:
            store.delete(tmp)
    return _where(store, name)


def sync_folder(local: str, *, target: str, fence: Fence) -> int:
    """Rank 0: copy every file under local folder ``local`` to ``target`` on the store while
    ``fence`` is current (TensorBoard's event files, after each epoch); return the files copied.

    Raises
    ------
    FencedError
        When ``fence`` is no longer current; nothing is copied.
    """
    store = ArrowStore(target)
    base = Path(local)
    files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
    with fenced(fence):
        for f in files:
            store.put_file(f, f.relative_to(base).as_posix())
    return len(files)


def latest_checkpoint(root: str | Store) -> CheckpointInfo | None:
    """Return the last complete checkpoint under ``root``, if any (the driver, before an
    attempt: ``root`` is then its Hadoop store).

    Raises
    ------
    BadInputError
        When ``checkpoint.json`` cannot be read, or names files that are missing (or, on a
        mounted store, whose checksum differs).

    Examples
    --------
    >>> latest_checkpoint("runs/none") is None
    True
    """
    store = as_store(root)
    if not store.exists(MANIFEST):
        return None
    manifest = _where(store, MANIFEST)
    fix = "Delete the checkpoints folder to start over, or restore it."
    try:
        doc = json.loads(store.read_bytes(MANIFEST))
        folder, files = str(doc["folder"]), dict(doc["files"])
        epoch, history = int(doc["epoch"]), list(doc["history"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"checkpoint pointer {manifest} is damaged ({exc}). {fix}") from exc
    local = store.local_path(folder)
    present = (
        local.is_dir() and _digest(local) == files
        if local is not None
        else set(files) <= set(store.list_names(folder))
    )
    if not present:
        raise BadInputError(
            f"checkpoint {_where(store, folder)} does not match the checksums in {manifest}: it "
            f"was changed or damaged. {fix}"
        )
    return CheckpointInfo(
        epoch=epoch,
        path=f"{_where(store, folder)}/ckpt",
        history=history,
        root=store.uri,
        folder=folder,
        files=files,
    )


def fetch_checkpoint(info: CheckpointInfo, *, staging: str) -> str:
    """Rank 0: copy checkpoint ``info`` to this node's ``staging`` folder, check every file's
    SHA-256, and return the local prefix to restore from.

    Raises
    ------
    BadInputError
        When a file is missing or its checksum differs from the pointer's.
    """
    store = ArrowStore(info.root)
    local = Path(tempfile.mkdtemp(prefix="sparkdl-resume-", dir=staging))
    fix = "Delete the checkpoints folder to start over, or restore it."
    try:
        for name in info.files:
            store.get_file(f"{info.folder}/{name}", local / name)
    except FileNotFoundError as exc:
        raise BadInputError(f"cannot resume from checkpoint {info.path}: {exc}. {fix}") from exc
    if _digest(local) != info.files:
        raise BadInputError(
            f"checkpoint {info.path} copied to this node does not match the checksums of "
            f"{MANIFEST}: it was changed or damaged. {fix}"
        )
    return str(local / "ckpt")


def restore_checkpoint(
    checkpoint: Any, *, path: str, required: bool, shown: str | None = None
) -> bool:
    """Read checkpoint ``path`` into ``checkpoint`` (a ``tf.train.Checkpoint``); return whether
    it was read.

    Parameters
    ----------
    checkpoint : tf.train.Checkpoint
        The model and optimizer to restore.
    path : str
        The checkpoint's prefix (``.../epoch-0003/ckpt``).
    required : bool
        Whether a missing checkpoint is an error (rank 0, whose state every rank receives) or
        is skipped (another rank that cannot see ``path`` gets rank 0's state).
    shown : str, optional
        What errors name as the checkpoint (its place on the store, when ``path`` is this
        node's copy of it).

    Raises
    ------
    BadInputError
        When ``path`` is required and missing, or cannot be read, or does not hold the
        variables of ``checkpoint``; never a silent fresh start.

    Examples
    --------
    >>> restore_checkpoint(ckpt, path="runs/x/checkpoints/epoch-0002/ckpt", required=True)  # doctest: +SKIP
    True
    """
    fix = (
        "Restore that checkpoint, or delete its folder's checkpoint.json to start over; "
        "train.output must be on a file system the executors share"
    )
    index = Path(f"{path}.index")
    if not index.is_file():
        if not required:
            return False
        raise BadInputError(
            f"cannot resume from checkpoint {shown or path}: {index} does not exist. {fix}"
        )
    import tensorflow as tf

    try:
        checkpoint.read(path).assert_existing_objects_matched()
    # a truncated file raises IndexError from TensorFlow's reader, a mismatch AssertionError
    except (tf.errors.OpError, AssertionError, ValueError, IndexError, OSError) as exc:
        raise BadInputError(
            f"cannot resume from checkpoint {shown or path}: it cannot be read "
            f"({type(exc).__name__}: {str(exc)[:300]}). {fix}"
        ) from exc
    return True
