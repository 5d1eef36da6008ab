"""Run a user's script the way a user on this venv would: a fresh interpreter, its own session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_user_script(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this venv's Python; its executors get the same interpreter (as with
    the venv activated: PySpark's default is the ``python3`` on ``PATH``). Asserts exit 0."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYSPARK_PYTHON": sys.executable},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done
