"""Atomic writes of small result files on the driver's local (or shared POSIX) file system.

Files get the mode the process umask gives (0644 under the usual 022), like every other file
of an output; :func:`tempfile.mkstemp` would leave them 0600.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    """Open a new sibling of ``path`` for writing, then rename it over ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never follow or reuse a file someone else put there; 0o666 & ~umask, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically: a new sibling, then a rename over ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> write_text(p, "hello"); p.read_text()
    'hello'
    """
    with _atomic(path, "w") as fh:
        fh.write(text)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temp file in the same folder, then a rename.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> write_json(p, {"a": 1}); json.loads(p.read_text())
    {'a': 1}
    """
    with _atomic(path, "wb") as fh:
        fh.write(json_bytes(data))


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers; anything else JSON cannot hold as its string."""
    return value.item() if hasattr(value, "item") else str(value)


def write_npz(path: Path, **arrays: Any) -> None:
    """Write numpy arrays atomically as one ``.npz`` file.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.npz"
    >>> write_npz(p, w=np.arange(3)); np.load(p)["w"].tolist()
    [0, 1, 2]
    """
    with _atomic(path, "wb") as fh:
        fh.write(npz_bytes(**arrays))


def json_bytes(data: Any) -> bytes:
    """``data`` as the JSON :func:`write_json` writes (for a store's ``write_bytes``).

    Examples
    --------
    >>> json_bytes({"b": 1, "a": 2})
    b'{\\n  "a": 2,\\n  "b": 1\\n}\\n'
    """
    return (json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n").encode()


def npz_bytes(**arrays: Any) -> bytes:
    """numpy arrays as the ``.npz`` file :func:`write_npz` writes.

    Examples
    --------
    >>> import io, numpy as np
    >>> np.load(io.BytesIO(npz_bytes(w=np.arange(2))))["w"].tolist()
    [0, 1]
    """
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
