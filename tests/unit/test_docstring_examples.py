"""The docstring examples that need no Spark session run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sparkdl

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(sparkdl.__path__, prefix="sparkdl.")
    # Modules that import TensorFlow at import time hold no runnable examples.
    if m.name not in {"sparkdl.train.callbacks", "sparkdl.launch._entry"}
)


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0, (
        f"{result.failed} docstring example(s) in {name} fail; run python -m doctest -v"
    )


def test_examples_exist() -> None:
    attempted = sum(
        doctest.testmod(importlib.import_module(n), optionflags=doctest.ELLIPSIS).attempted
        for n in MODULES
    )
    assert attempted >= 40
