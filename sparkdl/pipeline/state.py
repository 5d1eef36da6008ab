"""A pipeline run's state file: which steps finished, so a re-run does only what is left.

``<run dir>/state.json`` is rewritten atomically after every change. A finished run is not
run again; a failed one resumes at its first unfinished step. A run id is tied to the config
it started with: the same id with another config is refused rather than mixed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError
from sparkdl.files import write_json

DONE, FAILED, RUNNING = "done", "failed", "running"

RUN_ID_MAX = 128
_RUN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{RUN_ID_MAX - 1}}}")
_RUN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` when it names one folder inside ``pipeline.root``; refuse it otherwise.

    A run id is 1 to 128 letters, digits, ``.``, ``_`` and ``-``, starting with a letter or a
    digit: no path separator, no ``.`` or ``..``.

    Raises
    ------
    BadInputError
        Naming the value and the rule.

    Examples
    --------
    >>> check_run_id("nightly-2026-11-22")
    'nightly-2026-11-22'
    >>> check_run_id("../../escaped-run")
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: --run-id '../../escaped-run' is not a valid run id: ...
    """
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise BadInputError(
            f"--run-id {run_id!r} is not a valid run id: use 1 to {RUN_ID_MAX} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (no '/', '\\', '.' or '..'), "
            "e.g. --run-id nightly-2026-11-22"
        )
    return run_id


def check_run_date(run_date: str) -> str:
    """Return ``run_date`` when it is a real calendar date written ``YYYY-MM-DD``.

    Raises
    ------
    BadInputError
        Naming the value and the rule.

    Examples
    --------
    >>> check_run_date("2026-02-28")
    '2026-02-28'
    >>> check_run_date("2026-13-45")
    Traceback (most recent call last):
    ...
    sparkdl.errors.BadInputError: --run-date '2026-13-45' is not a date: ...
    """
    problem = None
    if not isinstance(run_date, str) or not _RUN_DATE.fullmatch(run_date):
        problem = "it is not written YYYY-MM-DD"
    else:
        try:
            dt.date.fromisoformat(run_date)
        except ValueError as exc:
            problem = str(exc)
    if problem is not None:
        raise BadInputError(
            f"--run-date {run_date!r} is not a date: {problem}. Give a real calendar date as "
            "YYYY-MM-DD, e.g. --run-date 2026-11-22, or leave it out for today (UTC)"
        )
    return run_date


def run_folder(root: str | Path, run_id: str) -> Path:
    """The folder of run ``run_id``: ``<root>/<run_id>``, checked to be directly inside ``root``.

    Examples
    --------
    >>> run_folder("/runs/pipeline", "nightly").as_posix()
    '/runs/pipeline/nightly'
    """
    base = Path(os.path.abspath(root))
    folder = Path(os.path.normpath(base / check_run_id(run_id)))
    resolved_base = base.resolve()
    if folder.parent != base or (folder.exists() and folder.resolve().parent != resolved_base):
        raise BadInputError(
            f"--run-id {run_id!r} resolves to {folder.resolve()}, outside pipeline.root "
            f"{resolved_base}; run folders must be directly inside pipeline.root (replace a "
            "link there by a real folder, or choose another --run-id)"
        )
    return resolved_base / run_id


@dataclass
class RunState:
    """The state of one run, backed by ``state.json``."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def open(cls, run_dir: Path, *, run_id: str, run_date: str, config_hash: str) -> RunState:
        """Load the run's state, or start it.

        Raises
        ------
        ValueError
            When the run id exists with another config.
        """
        path = run_dir / "state.json"
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("config_hash") != config_hash:
                raise BadInputError(
                    f"run {run_id!r} in {run_dir} was started with another config "
                    f"({data.get('config_hash', '?')[:12]} vs {config_hash[:12]}); re-run it with "
                    "the same config to resume, or give this config a new --run-id"
                )
            return cls(path, data)
        state = cls(
            path,
            {
                "run_id": run_id,
                "run_date": run_date,
                "config_hash": config_hash,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "steps": {},
            },
        )
        state.save()
        return state

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        write_json(self.path, self.data)

    def status(self, step: str) -> str | None:
        """``done``, ``failed``, ``running`` (an interrupted run) or None (not started)."""
        return self.data["steps"].get(step, {}).get("status")

    def start(self, step: str) -> None:
        """Mark ``step`` running."""
        entry = self.data["steps"].setdefault(step, {})
        entry.update(status=RUNNING, started=time.time(), attempts=entry.get("attempts", 0) + 1)
        entry.pop("error", None)
        self.save()

    def finish(self, step: str, *, summary: str, outputs: dict[str, Any]) -> None:
        """Mark ``step`` done with its summary line and output locations."""
        entry = self.data["steps"][step]
        entry.update(
            status=DONE,
            finished=time.time(),
            seconds=time.time() - entry["started"],
            summary=summary,
            outputs=outputs,
        )
        self.save()

    def fail(self, step: str, error: str) -> None:
        """Mark ``step`` failed with the error's first lines."""
        entry = self.data["steps"][step]
        entry.update(status=FAILED, finished=time.time(), error=error[:4000])
        self.save()

    def outputs(self, step: str) -> dict[str, Any]:
        """What a finished step recorded as its outputs."""
        return dict(self.data["steps"].get(step, {}).get("outputs", {}))
