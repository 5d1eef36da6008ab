"""A pipeline run's state file: which steps finished, so a re-run does only what is left.

``<run dir>/state.json`` is rewritten atomically after every change, through the run folder's
store (:mod:`sparkdl.store`: a shared mount, ``file:``, ``hdfs://``, ``s3a://``, ``abfss://`` or
``dbfs:/``). A finished run is not
run again; a failed one resumes at its first unfinished step. A run id is tied to the config
it started with: the same id with another config is refused rather than mixed.

This is the one module that writes and reads ``state.json``. Each step's entry is a
:class:`StepRecord`; a finished step's outputs are its typed record
(:mod:`sparkdl.pipeline.outputs`), read back with :meth:`RunState.output`. The file carries
``format: "sparkdl-pipeline-state/1"`` (a file without it was written before the field existed,
with the same layout, and is read as that format); any other format is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sparkdl.contract import check_format, from_plain, to_plain
from sparkdl.errors import BadInputError
from sparkdl.files import json_bytes
from sparkdl.pipeline.outputs import StepOutput, StepResult
from sparkdl.store import Location, Store, parse_location

DONE, FAILED, RUNNING = "done", "failed", "running"
FORMAT = "sparkdl-pipeline-state/1"
SUPPORTED_FORMATS = (FORMAT,)
STATE = "state.json"
_FIX = (
    "Resume this run with the sparkdl that started it, or give this run a new --run-id "
    "(or move the run folder away)."
)
OutputT = TypeVar("OutputT", bound=StepOutput)

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


def run_folder(root: str | Path, run_id: str) -> Location:
    """The folder of run ``run_id``: ``<root>/<run_id>``, checked to be directly inside ``root``.

    ``root`` is a POSIX path or a store URI (``pipeline.root``). On a mounted file system a
    link that leads the run folder out of ``root`` is refused.

    Examples
    --------
    >>> run_folder("/runs/pipeline", "nightly").uri
    '/runs/pipeline/nightly'
    >>> run_folder("hdfs://nn:8020/runs/pipeline", "nightly").uri
    'hdfs://nn:8020/runs/pipeline/nightly'
    """
    check_run_id(run_id)
    loc = parse_location(str(root), key="pipeline.root")
    if loc.scheme not in ("", "file"):
        return loc.child(run_id)  # a run id is one folder name: it cannot leave root
    base = Path(loc.path)
    folder = base / run_id
    resolved_base = base.resolve()
    if folder.exists() and folder.resolve().parent != resolved_base:
        raise BadInputError(
            f"--run-id {run_id!r} resolves to {folder.resolve()}, outside pipeline.root "
            f"{resolved_base}; run folders must be directly inside pipeline.root (replace a "
            "link there by a real folder, or choose another --run-id)"
        )
    resolved = str(resolved_base / run_id)
    return parse_location(resolved if loc.scheme == "" else f"file://{resolved}")


@dataclass(frozen=True)
class StepRecord:
    """One step's entry in ``state.json``: status, attempts, times, summary or error, outputs."""

    status: str
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    summary: str | None = None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _StateFile:
    """The whole of ``state.json``."""

    run_id: str
    run_date: str
    config_hash: str
    created_at: str
    steps: dict[str, StepRecord] = field(default_factory=dict)
    format: str = FORMAT


class RunState:
    """The state of one run, backed by ``state.json`` (rewritten on every change).

    Examples
    --------
    >>> from sparkdl.store.arrow import ArrowStore
    >>> store = ArrowStore("runs/pipeline/r")  # the driver passes a HadoopStore
    >>> state = RunState.open(store, run_id="r", run_date="2026-11-22", config_hash="c")  # doctest: +SKIP
    >>> state.output("train", TrainOutput).metrics  # doctest: +SKIP
    'runs/pipeline/r/train/metrics.json'
    """

    def __init__(self, store: Store, record: _StateFile) -> None:
        self.store = store
        self.path = f"{store.uri}/{STATE}"  # for messages
        self._record = record

    @classmethod
    def open(cls, store: Store, *, run_id: str, run_date: str, config_hash: str) -> RunState:
        """Load the run's state from the run folder ``store``, or start it.

        Raises
        ------
        BadInputError
            When the run id exists with another config, or its ``state.json`` is of a format
            this sparkdl does not read, damaged, or missing a field (naming the file).
        """
        try:
            text = store.read_bytes(STATE)
        except FileNotFoundError:
            text = None
        if text is not None:
            record = _parse(text, source=f"{store.uri}/{STATE}")
            if record.config_hash != config_hash:
                raise BadInputError(
                    f"run {run_id!r} in {store.uri} was started with another config "
                    f"({record.config_hash[:12]} vs {config_hash[:12]}); re-run it with "
                    "the same config to resume, or give this config a new --run-id"
                )
            return cls(store, record)
        state = cls(
            store,
            _StateFile(
                run_id=run_id,
                run_date=run_date,
                config_hash=config_hash,
                created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
        )
        state.save()
        return state

    @property
    def run_id(self) -> str:
        """The run's id (its folder's name)."""
        return self._record.run_id

    @property
    def run_date(self) -> str:
        """The run's logical date, ``YYYY-MM-DD``."""
        return self._record.run_date

    @property
    def steps(self) -> dict[str, StepRecord]:
        """Every step recorded so far, by name (the file keeps them sorted by name)."""
        return dict(self._record.steps)

    def save(self) -> None:
        """Write ``state.json`` atomically (readers see the old file or the new one)."""
        self.store.write_bytes(STATE, json_bytes(to_plain(self._record)))

    def step(self, step: str) -> StepRecord | None:
        """``step``'s entry, or None when it has not started in this run."""
        return self._record.steps.get(step)

    def status(self, step: str) -> str | None:
        """``done``, ``failed``, ``running`` (an interrupted run) or None (not started)."""
        entry = self.step(step)
        return entry.status if entry else None

    def start(self, step: str) -> None:
        """Mark ``step`` running (its error from an earlier attempt is cleared)."""
        before = self.step(step)
        self._put(
            step,
            StepRecord(
                status=RUNNING,
                started=time.time(),
                attempts=(before.attempts if before else 0) + 1,
            ),
        )

    def finish(self, step: str, result: StepResult) -> None:
        """Mark ``step`` done with its summary line and output record."""
        entry = self._require(step)
        now = time.time()
        self._put(
            step,
            dataclasses.replace(
                entry,
                status=DONE,
                finished=now,
                seconds=now - (entry.started or now),
                summary=result.summary,
                outputs=to_plain(result.output),
            ),
        )

    def fail(self, step: str, error: str) -> None:
        """Mark ``step`` failed with the error's first lines."""
        entry = self._require(step)
        self._put(
            step,
            dataclasses.replace(entry, status=FAILED, finished=time.time(), error=error[:4000]),
        )

    def output(self, step: str, kind: type[OutputT]) -> OutputT | None:
        """``step``'s output record when it finished in this run, else None.

        Raises
        ------
        BadInputError
            When the recorded outputs are not a ``kind`` (naming the file and the field).
        """
        entry = self.step(step)
        if entry is None or entry.status != DONE:
            return None
        return from_plain(kind, entry.outputs, source=f"{self.path} steps.{step}.outputs", fix=_FIX)

    def _require(self, step: str) -> StepRecord:
        entry = self.step(step)
        if entry is None:
            raise RuntimeError(f"pipeline step {step!r} was never started in {self.path}")
        return entry

    def _put(self, step: str, entry: StepRecord) -> None:
        self._record = dataclasses.replace(self._record, steps={**self._record.steps, step: entry})
        self.save()


def _parse(text: bytes, *, source: str) -> _StateFile:
    """Read and check ``state.json``'s content (``source`` names it in messages)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{source} is not JSON ({exc}). {_FIX}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{source} is not a JSON object. {_FIX}")
    # written before the field existed, in the layout of format 1
    found = data.get("format", FORMAT)
    check_format(found, supported=SUPPORTED_FORMATS, source=source, fix=_FIX)
    return from_plain(_StateFile, {**data, "format": found}, source=source, fix=_FIX)
