"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import fsspec
import pyarrow.fs as pafs
import pytest

from sparkdl.store.arrow import register_filesystem


@pytest.fixture
def object_store() -> Iterator[str]:
    """``s3://bucket/...`` served by fsspec's in-memory file system in this process: a store that
    is not mounted and cannot rename folders."""
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    fs = pafs.PyFileSystem(pafs.FSSpecHandler(memory))
    register_filesystem("s3", lambda loc: (fs, "/" + loc.path))
    yield "s3://bucket/run"
    register_filesystem("s3", None)
    memory.store.clear()
