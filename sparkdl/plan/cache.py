"""Calibrations on disk, one file per machine, stack and what was measured.

A calibration is kept in ``$SPARKDL_PLAN_CACHE`` (default ``~/.cache/sparkdl/plan``) under a
name made of its kind and the hash of its key: this machine (host name, CPU model, cores), the
stack (Python, TensorFlow, Horovod, sparkdl) and what it measured (the model's layers, batch
size and threads; the network's label). A file whose stack differs from the running one is
outdated: it is measured again, saying so, never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CACHE_ENV = "SPARKDL_PLAN_CACHE"
FORMAT = "sparkdl-plan-calibration/3"


def cache_dir() -> Path:
    """Where calibrations are kept."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "sparkdl" / "plan"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "absent"


def stack() -> dict[str, Any]:
    """This machine and its software stack: what a calibration is only valid for.

    Examples
    --------
    >>> sorted(stack())
    ['cores', 'cpu', 'horovod', 'host', 'python', 'sparkdl', 'tensorflow']
    """
    import sparkdl

    return {
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow-cpu")
        if _version("tensorflow") == "absent"
        else _version("tensorflow"),
        "horovod": _version("horovod"),
        "sparkdl": sparkdl.__version__,
    }


def _path(kind: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir() / f"{kind}-{digest[:16]}.json"


def load(kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached calibration of ``kind`` for ``key`` on this stack, or None (logged why)."""
    path = _path(kind, {**key, "host": platform.node()})
    if not path.exists():
        logger.info("no %s calibration for this machine and stack yet", kind)
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s is unreadable (%s): measuring the %s calibration again", path, exc, kind)
        return None
    now = stack()
    if doc.get("format") != FORMAT or doc.get("stack") != now:
        changed = sorted(k for k in now if (doc.get("stack") or {}).get(k) != now[k])
        logger.info(
            "the %s calibration in %s is outdated (%s changed): measuring it again",
            kind,
            path,
            ", ".join(changed) or "format",
        )
        return None
    logger.info("using the %s calibration of %s (%s)", kind, doc.get("measured_at"), path)
    return doc["value"]


def save(kind: str, key: dict[str, Any], value: dict[str, Any]) -> Path:
    """Keep ``value`` as the calibration of ``kind`` for ``key`` on this stack."""
    import time

    path = _path(kind, {**key, "host": platform.node()})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "kind": kind,
        "key": key,
        "stack": stack(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "value": value,
    }
    # processes and threads that calibrate at once each write their own file, then rename
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(path)
    return path
