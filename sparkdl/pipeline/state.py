"""A pipeline run's state file: which steps finished, so a re-run does only what is left.

``<run dir>/state.json`` is rewritten atomically after every change. A finished run is not
run again; a failed one resumes at its first unfinished step. A run id is tied to the config
it started with: the same id with another config is refused rather than mixed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkdl.errors import BadInputError
from sparkdl.files import write_json

DONE, FAILED, RUNNING = "done", "failed", "running"


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
