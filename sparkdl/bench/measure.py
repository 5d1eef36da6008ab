"""Measuring helpers: a child process's peak memory, medians, a result table."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ChildRun:
    """One measured child process: its JSON result and peak resident memory."""

    result: dict
    wall_s: float
    peak_python_mb: float
    peak_jvm_mb: float


def run_measured(args: Sequence[str], *, timeout_s: float, interval_s: float = 0.1) -> ChildRun:
    """Run ``python args...`` and sample the RSS of it (the driver) and its JVM child.

    The child must print one JSON object as its last stdout line.

    Examples
    --------
    >>> run_measured(["-c", "print('{}')"], timeout_s=30).result
    {}
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peaks = {"py": 0.0, "jvm": 0.0}
    done = threading.Event()

    def sample() -> None:
        try:
            me = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                peaks["py"] = max(peaks["py"], me.memory_info().rss / 1e6)
                jvm = sum(
                    c.memory_info().rss for c in me.children(recursive=True) if "java" in c.name()
                )
                peaks["jvm"] = max(peaks["jvm"], jvm / 1e6)
            except psutil.Error:
                pass
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.strip()]
    return ChildRun(
        result=json.loads(lines[-1]),
        wall_s=wall,
        peak_python_mb=peaks["py"],
        peak_jvm_mb=peaks["jvm"],
    )


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as an aligned text table."""
    cells = [[str(h) for h in header]] + [
        [f"{v:,.3g}" if isinstance(v, float) else str(v) for v in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


@contextlib.contextmanager
def scratch_dir(path: str | None, *, prefix: str) -> Iterator[Path]:
    """The benchmark's work folder: ``path`` (created, kept) or a temporary one (removed)."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
