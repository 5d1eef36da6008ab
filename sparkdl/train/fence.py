"""The checkpoint fence: which attempt may publish into ``train.output``.

``<output>/checkpoints/fence.json`` names the one attempt (number and launch id) allowed to
publish; the driver moves it before each attempt starts (:func:`claim_fence`). Rank 0 publishes
a checkpoint's pointer, prunes older checkpoints, exports the model and syncs TensorBoard events
only while the fence still names its own attempt (:func:`fenced`), so the ranks of an attempt
that was given up, and that live on for a while, can no longer change what the next attempt
resumes from.

On a mounted store (a POSIX path, ``file:``, ``dbfs:``) ``.publish.lock`` (``flock``) makes the
check and the publish one step, and the driver's claim waits for a publish in progress. Object
stores and HDFS have no such lock: there the check runs right before each publish, and the
driver waits for a failed attempt's tasks to end before it claims the fence
(:mod:`sparkdl.train.attempts`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sparkdl.errors import InfraError
from sparkdl.store import Store
from sparkdl.store.arrow import ArrowStore

logger = logging.getLogger(__name__)

FENCE = "fence.json"
LOCK = ".publish.lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class Fence:
    """The attempt allowed to publish under checkpoint root ``root`` (a URI or an absolute path;
    a plain, picklable value)."""

    root: str
    attempt: int
    launch_id: str


# A spec built without a fence: every publish through it is refused.
NO_FENCE = Fence(root="", attempt=-1, launch_id="")


class FencedError(InfraError):
    """A rank of an attempt that is no longer the current one tried to publish; it must stop."""


def as_store(root: str | Store) -> Store:
    """``root`` itself when it is a store, else the ranks' store over it."""
    return ArrowStore(root) if isinstance(root, str) else root


@contextlib.contextmanager
def publish_lock(store: Store) -> Iterator[None]:
    """Hold the exclusive publish lock of a mounted store (a no-op elsewhere, and where the
    file system has no locks)."""
    base = store.local_path()
    if base is None:
        yield
        return
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


def claim_fence(root: str | Store, *, attempt: int) -> Fence:
    """Driver: make ``attempt`` the only one allowed to publish under ``root``; call it before
    the attempt starts.

    On a mounted store it waits for a publish in progress (an older attempt's rank 0 in the
    middle of a checkpoint) to finish, so once this returns no older attempt can change
    ``root`` any more.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> claim_fence(root, attempt=1).attempt
    1
    """
    store = as_store(root)
    fence = Fence(root=store.uri, attempt=attempt, launch_id=uuid.uuid4().hex)
    doc = {"attempt": attempt, "launch_id": fence.launch_id}
    with publish_lock(store):
        store.write_bytes(FENCE, json.dumps(doc, indent=1).encode())
    return fence


def _current(store: Store) -> object:
    try:
        return json.loads(store.read_bytes(FENCE))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def fenced(fence: Fence, store: Store | None = None) -> Iterator[Store]:
    """Hold the publish lock while ``fence`` is the current one (yielding the store under its
    root); raise FencedError otherwise.

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
    sparkdl.train.fence.FencedError: attempt 0 ... may not publish ...
    """
    if not fence.root:
        raise FencedError("this rank was started without a checkpoint fence; it may not publish")
    store = store or ArrowStore(fence.root)
    with publish_lock(store):
        current = _current(store)
        if current != {"attempt": fence.attempt, "launch_id": fence.launch_id}:
            holder = (
                f"attempt {current.get('attempt')} (launch {str(current.get('launch_id'))[:8]})"
                if isinstance(current, dict)
                else "no readable fence"
            )
            raise FencedError(
                f"attempt {fence.attempt} (launch {fence.launch_id[:8]}) may not publish into "
                f"{store.uri}: {FENCE} there names {holder}. The driver gave this attempt up; "
                "its ranks stop without writing."
            )
        yield store
