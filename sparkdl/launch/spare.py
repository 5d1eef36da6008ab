"""Warm spare rank processes: TensorFlow and Horovod already imported, waiting for a run.

Importing TensorFlow and Horovod takes most of a rank's start-up (about 2.7 s of the 3.8 s
from submission to ``hvd.init()`` on a 2-core machine). With ``launch.warm_start`` on, each
barrier task leaves behind one spare child that imports those modules while the executor is
idle; the next launch on that Python worker hands the spare its environment and payload over
stdin instead of starting a cold interpreter. A spare runs exactly one function and exits, so
no state is shared between runs; it is used only when every environment variable that can
matter before ``hvd.init()`` (all but ``HOROVOD_*``) is what it was started with, and it dies
with the Python worker that started it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping

logger = logging.getLogger(__name__)

PRELOAD = ("horovod.tensorflow.keras",)
# Read by Horovod at hvd.init(), or set per run by the launcher: may differ from the spare's.
# The launch's rendezvous secret is new every launch; a spare gets it only at hand-over.
_PER_RUN = ("HOROVOD_", "SPARKDL_PARENT_PID", "SPARKDL_RENDEZVOUS_SECRET")

_spare: tuple[str, subprocess.Popen[str]] | None = None


def spare_key(env: Mapping[str, str]) -> str:
    """The part of a child environment a spare must have been started with.

    Examples
    --------
    >>> spare_key({"HOROVOD_RANK": "1", "CUDA_VISIBLE_DEVICES": "0"})
    '{"CUDA_VISIBLE_DEVICES": "0"}'
    >>> spare_key({"SPARKDL_RENDEZVOUS_SECRET": "ab12", "CUDA_VISIBLE_DEVICES": "0"})
    '{"CUDA_VISIBLE_DEVICES": "0"}'
    """
    return json.dumps({k: v for k, v in sorted(env.items()) if not k.startswith(_PER_RUN)})


def take(env: Mapping[str, str]) -> subprocess.Popen[str] | None:
    """Return the waiting spare when it matches ``env`` and is alive; otherwise drop it."""
    global _spare
    if _spare is None:
        return None
    key, proc = _spare
    _spare = None
    if key == spare_key(env) and proc.poll() is None:
        return proc
    _discard(proc)
    return None


def start(env: Mapping[str, str]) -> None:
    """Start a spare for the next run with ``env`` (replacing any other)."""
    global _spare
    if _spare is not None:
        _discard(_spare[1])
    base = {k: v for k, v in env.items() if not k.startswith(_PER_RUN)}
    base["SPARKDL_PARENT_PID"] = str(os.getpid())
    from sparkdl.launch.child import start_entry

    proc = start_entry(["--wait", ",".join(PRELOAD)], env=base, stdin=subprocess.PIPE)
    _spare = (spare_key(env), proc)
    logger.debug("started warm spare rank process %d", proc.pid)


def drop() -> None:
    """Kill the waiting spare, if any."""
    global _spare
    if _spare is not None:
        _discard(_spare[1])
        _spare = None


def hand_over(
    proc: subprocess.Popen[str], *, env: Mapping[str, str], payload: str, result: str
) -> None:
    """Give a spare its full environment and the run's payload and result paths."""
    if proc.stdin is None:
        raise RuntimeError("a spare rank process was started without a stdin pipe")
    proc.stdin.write(json.dumps({"env": dict(env), "payload": payload, "result": result}) + "\n")
    proc.stdin.close()


def _discard(proc: subprocess.Popen[str]) -> None:
    from sparkdl.launch.child import kill_group

    kill_group(proc)


def wait_main(preload: str) -> int:
    """Spare side: import ``preload``, then run the one function handed over on stdin."""
    import importlib

    from sparkdl.launch.child import child_main, die_with_parent

    die_with_parent(int(os.environ.get("SPARKDL_PARENT_PID", os.getppid())))
    for module in filter(None, preload.split(",")):
        importlib.import_module(module)
    line = sys.stdin.readline()
    if not line:
        return 0  # the worker went away or dropped the spare
    order = json.loads(line)
    os.environ.clear()
    os.environ.update(order["env"])
    return child_main(order["payload"], order["result"])
