"""Opening a context ahead of use on a background thread (the next epoch's readers)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from sparkdl.train.ahead import Ahead


def _tracked(
    events: list[str], value: int, fail: bool = False
) -> contextlib.AbstractContextManager:
    @contextlib.contextmanager
    def cm() -> Iterator[int]:
        events.append(f"enter on {threading.current_thread().name}")
        if fail:
            raise OSError("reader could not open")
        try:
            yield value
        finally:
            events.append("exit")

    return cm()


def test_value_is_entered_on_its_own_thread_and_exited_on_close() -> None:
    events: list[str] = []
    ahead = Ahead(lambda: _tracked(events, 7), name="opener")
    assert ahead.take() == 7
    assert events == ["enter on opener"]
    ahead.close()
    ahead.close()  # idempotent
    assert events == ["enter on opener", "exit"]


def test_close_without_take_still_exits_the_context() -> None:
    events: list[str] = []
    with Ahead(lambda: _tracked(events, 1), name="unused"):
        pass
    assert events == ["enter on unused", "exit"]


def test_an_error_while_entering_is_raised_by_take() -> None:
    events: list[str] = []
    ahead = Ahead(lambda: _tracked(events, 1, fail=True), name="broken")
    with pytest.raises(OSError, match="reader could not open"):
        ahead.take()
    ahead.close()
    assert events == ["enter on broken"]  # never entered, so nothing to exit
