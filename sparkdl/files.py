"""Atomic writes of small result files on the driver's local (or shared POSIX) file system."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temp file in the same folder, then a rename.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> write_json(p, {"a": 1}); json.loads(p.read_text())
    {'a': 1}
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=_plain)
        fh.write("\n")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers; anything else JSON cannot hold as its string."""
    return value.item() if hasattr(value, "item") else str(value)


def write_npz(path: Path, **arrays: Any) -> None:
    """Write numpy arrays atomically as one ``.npz`` file."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
