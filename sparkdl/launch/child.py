"""Run a rank's function in a child process of the barrier task.

The child gets its Horovod environment before TensorFlow loads, leaks no state into the reused
Python worker, dies with its parent (``PR_SET_PDEATHSIG`` plus a parent watch), and streams its
output line by line: each line is echoed to the task's stderr (so it lands in the executor log)
and the last ``TAIL_LINES`` are kept for the error message when it fails.

The child side is ``python -m sparkdl.launch._entry PAYLOAD RESULT``.

Each run's payload and result live in ``<tmp>/sparkdl-rank-<pid>-*``, named after the Python
worker that owns it: a worker killed with its task (SIGKILL) cannot remove it, so the next run on
the machine removes those folders whose owner process is gone.

A rank that fails on bad input (a :class:`~sparkdl.errors.BadInputError`, such as a model
function that cannot be built) fails the same way on every attempt: its error travels to the
driver (:mod:`sparkdl.launch.inputerror`), which ends the run on the first attempt instead of
retrying it.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sparkdl.errors import (
    EXIT_BAD_INPUT,
    InfraError,
    SparkdlError,
)
from sparkdl.launch import spare
from sparkdl.launch.inputerror import input_error_note, record_input_error
from sparkdl.launch.rankerror import record_rank_error

logger = logging.getLogger(__name__)

TAIL_LINES = 100
TMP_PREFIX = "sparkdl-rank-"
_PR_SET_PDEATHSIG = 1
_watching = False


class RankError(InfraError):
    """A rank's child process failed; the message holds its exit status and last output lines."""


def run_in_child(
    fn: Callable[..., Any],
    *,
    args: tuple[Any, ...] = (),
    env: Mapping[str, str],
    label: str,
    timeout_s: float | None = None,
    echo: Callable[[str], None] | None = None,
    warm_start: bool = False,
) -> Any:
    """Run ``fn(*args)`` in a fresh Python process with ``env`` added, and return its result.

    Parameters
    ----------
    fn : callable
        A function cloudpickle can serialise; it runs in the child.
    args : tuple
        Its positional arguments.
    env : mapping
        Variables added to this process's environment for the child.
    label : str
        Prefix for echoed output lines, such as ``"[rank 1 attempt 0]"``.
    timeout_s : float, optional
        Kill the child and fail after this many seconds.
    echo : callable, optional
        Receives each output line (default: write it to this process's stderr).
    warm_start : bool
        Use this worker's waiting spare process when its environment matches, and leave a new
        spare behind for the next run (see :mod:`sparkdl.launch.spare`).

    Returns
    -------
    object
        What ``fn`` returned.

    Raises
    ------
    RankError
        When the child exits non-zero, is killed or times out; the message carries its exit
        status and last 100 output lines.

    Examples
    --------
    >>> run_in_child(pow, args=(2, 5), env={}, label="[demo]")  # doctest: +SKIP
    32
    """
    import cloudpickle

    emit = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    remove_stale_folders()
    with _run_folder() as tmp:
        payload, result = Path(tmp, "payload.pkl"), Path(tmp, "result.pkl")
        payload.write_bytes(cloudpickle.dumps((fn, args)))
        child_env = {
            **os.environ,
            **env,
            # What this Python worker can import, the rank can (spark-submit --py-files land on
            # the worker's sys.path, not in its environment).
            "PYTHONPATH": os.pathsep.join(
                [*(p for p in sys.path if p), *filter(None, [env.get("PYTHONPATH")])]
            ),
            "PYTHONUNBUFFERED": "1",
            "SPARKDL_PARENT_PID": str(os.getpid()),
        }
        proc = spare.take(child_env) if warm_start else None
        if proc is not None:
            spare.hand_over(proc, env=child_env, payload=str(payload), result=str(result))
            emit(f"{label} runs in warm spare process {proc.pid} (launch.warm_start)")
        else:
            proc = start_entry([str(payload), str(result)], env=child_env, stdin=subprocess.DEVNULL)
        Path(tmp, "group").write_text(str(proc.pid))  # the rank (or spare) leads its group
        try:
            value = _supervise(proc, result, label=label, timeout_s=timeout_s, emit=emit)
        except RankError:
            if warm_start:  # a retried attempt starts warm too
                spare.start(child_env)
            raise
        if warm_start:
            spare.start(child_env)
        return value


@contextlib.contextmanager
def _run_folder() -> Iterator[str]:
    """A private folder for one run's payload and result, named after this process."""
    tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_folders(parent: str | None = None) -> list[str]:
    """Remove the run folders under ``parent`` (default: the temp dir) whose owner is gone.

    A folder is stale when no process with its owner's pid exists, or that pid now belongs
    to a process started after the folder was made (the pid was reused). What is left of its
    rank's process group (processes the rank started, which its death signal did not reach)
    is killed with it.

    Examples
    --------
    >>> import tempfile
    >>> remove_stale_folders(tempfile.mkdtemp())
    []
    """
    import psutil

    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        owner = folder.name[len(TMP_PREFIX) :].split("-")[0]
        if not owner.isdigit() or not folder.is_dir():
            continue  # a folder of the older, unnamed layout: its owner is unknown
        try:
            made = folder.stat().st_mtime
            alive = psutil.Process(int(owner)).create_time() <= made + 1
        except psutil.NoSuchProcess:
            alive = False
        except (OSError, psutil.Error):
            continue
        if not alive:
            _kill_leftovers(folder, owner=owner)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    if removed:
        logger.info("removed %d run folders left by killed rank tasks", len(removed))
    return removed


def _kill_leftovers(folder: Path, *, owner: str) -> None:
    """Kill the processes still in the process group a dead owner's rank led."""
    import psutil

    try:
        group = int((folder / "group").read_text())
    except (OSError, ValueError):
        return
    for proc in psutil.process_iter():
        try:
            # The group id alone could have been reused: the members carry their owner's pid.
            if os.getpgid(proc.pid) == group and proc.environ().get("SPARKDL_PARENT_PID") == owner:
                logger.warning(
                    "killing process %d left by a killed rank (group %d)", proc.pid, group
                )
                proc.kill()
        except (OSError, psutil.Error):
            continue


def start_entry(args: list[str], *, env: Mapping[str, str], stdin: int) -> subprocess.Popen[str]:
    """Start ``python -m sparkdl.launch._entry ARGS`` as the leader of its own process group,
    its stdout and stderr merged into one text pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "sparkdl.launch._entry", *args],
        env=dict(env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )


def _supervise(
    proc: subprocess.Popen[str],
    result: Path,
    *,
    label: str,
    timeout_s: float | None,
    emit: Callable[[str], None],
) -> Any:
    """Pump the child's output, wait for it, and return its result or raise RankError."""
    import cloudpickle

    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    reader = threading.Thread(
        target=_pump, args=(proc, tail, label, emit), name=f"{label} output", daemon=True
    )
    reader.start()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        reader.join(timeout=5)
        raise RankError(
            f"{label} did not finish within {timeout_s:.0f} s and was killed; "
            f"last output lines:\n" + "\n".join(tail)
        ) from None
    except BaseException:
        # The task is being cancelled (Spark kill, KeyboardInterrupt): take the child along.
        kill_group(proc)
        raise
    reader.join(timeout=5)
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise RankError(
            f"{label} {how}{input_error_note(result)}; last {len(tail)} output lines:\n"
            + "\n".join(tail)
        )
    if not result.exists():
        raise RankError(f"{label} exited 0 without writing a result; output:\n" + "\n".join(tail))
    return cloudpickle.loads(result.read_bytes())


def _pump(
    proc: subprocess.Popen[str],
    tail: collections.deque[str],
    label: str,
    emit: Callable[[str], None],
) -> None:
    if proc.stdout is None:
        return
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        tail.append(line)
        emit(f"{label} {line}")


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the child and anything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when the barrier task's process goes away (once per process)."""
    global _watching
    if _watching:
        return
    _watching = True
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        logger.debug("prctl unavailable; relying on the parent watch thread")

    def watch() -> None:
        while True:
            # Re-parented (to init or a subreaper): the task that started us is gone.
            if os.getppid() != parent_pid:
                os._exit(137)
            time.sleep(1.0)

    threading.Thread(target=watch, name="sparkdl-parent-watch", daemon=True).start()


def child_main(payload: str, result: str) -> int:
    """Entry point of the child process: load the function, run it, write its result."""
    import cloudpickle

    die_with_parent(int(os.environ.get("SPARKDL_PARENT_PID", os.getppid())))
    fn, args = cloudpickle.loads(Path(payload).read_bytes())
    Path(payload).unlink(missing_ok=True)  # read once; nothing of it stays behind a killed run
    # The function's temporary files (a rank's staged checkpoints, model, TensorBoard events)
    # go into this run's folder, which the task removes when the child ends and the next run
    # on the node removes after a killed task: nothing of a run outlives it on the node.
    tempfile.tempdir = str(Path(payload).parent)
    try:
        value = fn(*args)
    except Exception as exc:  # told to the driver before a peer's shutdown can be
        if isinstance(exc, SparkdlError) and exc.exit_code == EXIT_BAD_INPUT:
            record_input_error(exc, result=result)  # deterministic: the driver must not retry
        else:
            record_rank_error(exc)
        raise
    tmp = Path(result + ".tmp")
    tmp.write_bytes(cloudpickle.dumps(value))
    tmp.replace(result)
    return 0
