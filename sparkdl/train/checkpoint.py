"""Atomic per-epoch checkpoints written by rank 0, fenced by attempt, read by the driver to resume.

Layout of ``<output>/checkpoints``::

    epoch-0003/ckpt.*       tf.train.Checkpoint of the model and the optimizer state
    checkpoint.json         the last complete checkpoint: epoch, folder, SHA-256 of each file,
                            and the history up to that epoch; written last, replaced atomically
    fence.json              the one attempt allowed to publish here: its number and launch id
    .publish.lock           held (flock) while an attempt publishes or the driver moves the fence

A checkpoint folder is written under a temporary name and renamed when complete, so a crash
mid-write leaves ``checkpoint.json`` pointing at the previous one.

The driver writes a new fence before each attempt starts (:func:`claim_fence`). Everything a rank
publishes into ``train.output`` (a checkpoint's rename, the pointer, the pruning of older
checkpoints, the exported model) happens under the lock and only while the fence still names the
rank's own attempt (:func:`fenced`): the ranks of an attempt that was given up, and that live on
for a while, can no longer write into, or prune, the folders the next attempt resumes from.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError, InfraError
from sparkdl.files import write_text

logger = logging.getLogger(__name__)

MANIFEST = "checkpoint.json"
FENCE = "fence.json"
LOCK = ".publish.lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class CheckpointInfo:
    """The last complete checkpoint: resume after ``epoch`` from ``path``."""

    epoch: int
    path: str
    history: list[dict[str, float]]


@dataclass(frozen=True)
class Fence:
    """The attempt allowed to publish under checkpoint root ``root`` (a plain, picklable value)."""

    root: str
    attempt: int
    launch_id: str


# A spec built without a fence: every publish through it is refused.
NO_FENCE = Fence(root="", attempt=-1, launch_id="")


class FencedError(InfraError):
    """A rank of an attempt that is no longer the current one tried to publish; it must stop."""


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for f in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.name] = h.hexdigest()
    return out


@contextlib.contextmanager
def _publish_lock(base: Path) -> Iterator[None]:
    """Hold the exclusive publish lock of ``base`` (a no-op where the file system has no locks)."""
    base.mkdir(parents=True, exist_ok=True)
    with open(base / LOCK, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            logger.warning(
                "%s does not support file locks (%s): fence checks run unlocked", base, exc
            )
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, doc: dict[str, Any]) -> None:
    write_text(path, json.dumps(doc, indent=1))


def claim_fence(root: str, *, attempt: int) -> Fence:
    """Driver: make ``attempt`` the only one allowed to publish under ``root``; call it before
    the attempt starts.

    Waits for a publish in progress (an older attempt's rank 0 in the middle of a checkpoint) to
    finish, so once this returns no older attempt can change ``root`` any more.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> claim_fence(root, attempt=1).attempt
    1
    """
    fence = Fence(root=str(root), attempt=attempt, launch_id=uuid.uuid4().hex)
    base = Path(root)
    with _publish_lock(base):
        _write_atomic(base / FENCE, {"attempt": attempt, "launch_id": fence.launch_id})
    return fence


@contextlib.contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Hold the publish lock while ``fence`` is the current one; raise FencedError otherwise.

    Raises
    ------
    FencedError
        When the driver has moved the fence on (a later attempt, or another run): the caller's
        attempt was given up and must not publish.

    Examples
    --------
    >>> import tempfile
    >>> old = claim_fence(tempfile.mkdtemp(), attempt=0)
    >>> new = claim_fence(old.root, attempt=1)
    >>> with fenced(old):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    sparkdl.train.checkpoint.FencedError: attempt 0 ... may not publish ...
    """
    if not fence.root:
        raise FencedError("this rank was started without a checkpoint fence; it may not publish")
    base = Path(fence.root)
    with _publish_lock(base):
        try:
            current = json.loads((base / FENCE).read_text())
        except (OSError, ValueError):
            current = None
        if current != {"attempt": fence.attempt, "launch_id": fence.launch_id}:
            holder = (
                f"attempt {current.get('attempt')} (launch {str(current.get('launch_id'))[:8]})"
                if isinstance(current, dict)
                else "no readable fence"
            )
            raise FencedError(
                f"attempt {fence.attempt} (launch {fence.launch_id[:8]}) may not publish into "
                f"{base}: {base / FENCE} names {holder}. The driver gave this attempt up; its "
                "ranks stop without writing."
            )
        yield


def write_checkpoint(
    checkpoint: Any, *, root: str, epoch: int, history: list[dict[str, float]], fence: Fence
) -> str:
    """Write ``checkpoint`` (a ``tf.train.Checkpoint``) for ``epoch`` atomically; return its folder.

    The files are written under a temporary name; the rename, the pointer and the pruning of
    older checkpoints happen only while ``fence`` is current (:func:`fenced`).

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
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{fence.launch_id[:12]}-{epoch:04d}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        checkpoint.write(str(tmp / "ckpt"))
        files = _digest(tmp)
        final = base / f"epoch-{epoch:04d}"
        with fenced(fence):
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            doc = {"epoch": epoch, "folder": final.name, "files": files, "history": history}
            _write_atomic(base / MANIFEST, doc)
            _prune(base, keep=final.name, launch_id=fence.launch_id)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def _prune(base: Path, *, keep: str, launch_id: str) -> None:
    """Remove older checkpoints and temporary folders other launches left (under the lock)."""
    for old in base.glob("epoch-*"):
        if old.name < keep:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in base.glob(".tmp-*"):
        if not tmp.name.startswith(f".tmp-{launch_id[:12]}-"):
            shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(save: Callable[[str], None], *, target: str, fence: Fence) -> str:
    """Rank 0: ``save(path)`` into a temporary folder next to ``target``, then replace
    ``target`` with it while ``fence`` is current (the exported model).

    Raises
    ------
    FencedError
        When ``fence`` is no longer current; ``target`` is left as it was.

    Examples
    --------
    >>> publish_folder(model.save, target="runs/x/model", fence=fence)  # doctest: +SKIP
    'runs/x/model'
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{fence.launch_id[:12]}-{uuid.uuid4().hex[:8]}"
    try:
        save(str(tmp))
        with fenced(fence):
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def latest_checkpoint(root: str) -> CheckpointInfo | None:
    """Return the last complete, checksum-verified checkpoint under ``root``, if any.

    Raises
    ------
    BadInputError
        When ``checkpoint.json`` cannot be read, or names files that are missing or whose
        checksum differs.

    Examples
    --------
    >>> latest_checkpoint("runs/none") is None
    True
    """
    manifest = Path(root) / MANIFEST
    if not manifest.exists():
        return None
    fix = "Delete the checkpoints folder to start over, or restore it."
    try:
        doc = json.loads(manifest.read_text())
        folder = Path(root) / doc["folder"]
        epoch, history = int(doc["epoch"]), list(doc["history"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"checkpoint pointer {manifest} is damaged ({exc}). {fix}") from exc
    if not folder.is_dir() or _digest(folder) != doc.get("files"):
        raise BadInputError(
            f"checkpoint {folder} does not match the checksums in {manifest}: it was changed or "
            f"damaged. {fix}"
        )
    return CheckpointInfo(epoch=epoch, path=str(folder / "ckpt"), history=history)


def restore_checkpoint(checkpoint: Any, *, path: str, required: bool) -> bool:
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
        raise BadInputError(f"cannot resume from checkpoint {path}: {index} does not exist. {fix}")
    import tensorflow as tf

    try:
        checkpoint.read(path).assert_existing_objects_matched()
    # a truncated file raises IndexError from TensorFlow's reader, a mismatch AssertionError
    except (tf.errors.OpError, AssertionError, ValueError, IndexError, OSError) as exc:
        raise BadInputError(
            f"cannot resume from checkpoint {path}: it cannot be read "
            f"({type(exc).__name__}: {str(exc)[:300]}). {fix}"
        ) from exc
    return True
