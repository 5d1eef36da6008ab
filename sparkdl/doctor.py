"""``sparkdl doctor``: check that this machine runs the sparkdl stack, and say how to fix it."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from sparkdl.identity import inspect_identity
from sparkdl.stack import KNOWN_GOOD, installed_version

logger = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """The outcome of one doctor check."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def java_version(java: str | None = None) -> tuple[str | None, int | None]:
    """Return (java binary, major version), preferring ``$JAVA_HOME/bin/java`` like Spark does.

    Examples
    --------
    >>> java_version()[1] >= 17  # doctest: +SKIP
    True
    """
    home = os.environ.get("JAVA_HOME")
    binary = java or (
        os.path.join(home, "bin", "java")
        if home and os.path.exists(os.path.join(home, "bin", "java"))
        else shutil.which("java")
    )
    if not binary:
        return None, None
    try:
        out = subprocess.run(
            [binary, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return binary, None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return binary, None
    major = int(m.group(1))
    return binary, int(m.group(2) or 0) if major == 1 else major


def check_python() -> Check:
    """Python must be 3.10 or 3.11 (TensorFlow 2.15 and Horovod 0.28.1)."""
    v = sys.version_info
    text = f"{v.major}.{v.minor}.{v.micro} at {sys.executable}"
    if (3, 10) <= (v.major, v.minor) <= (3, 11):
        return Check("python", "ok", text)
    return Check(
        "python",
        "fail",
        text,
        "use Python 3.10 or 3.11: SPARKDL_PYTHON=python3.11 scripts/setup.sh",
    )


def check_java() -> Check:
    """Spark 3.5 here needs Java 17 or newer."""
    binary, major = java_version()
    if binary is None:
        return Check(
            "java",
            "fail",
            "no java on PATH or in $JAVA_HOME",
            "run scripts/setup.sh (installs openjdk-17-jre-headless as root)",
        )
    if major is None or major < 17:
        return Check(
            "java",
            "fail",
            f"{binary} is version {major}",
            "install JDK 17+ and set JAVA_HOME to it",
        )
    return Check("java", "ok", f"{major} at {binary}")


def check_versions() -> list[Check]:
    """Compare each package of the stack with the known-good pins."""
    checks = []
    for pin in KNOWN_GOOD:
        dist, version = installed_version(pin)
        if version is None:
            checks.append(Check(dist, "fail", "not installed", "run scripts/setup.sh"))
        elif pin.matches(version):
            checks.append(Check(dist, "ok", version))
        else:
            checks.append(
                Check(
                    dist,
                    "fail",
                    f"{version}, known-good is {pin.prefix}{'x' if pin.prefix.endswith('.') else ''}"
                    f" ({pin.why})",
                    "reinstall the pinned stack: scripts/setup.sh --force",
                )
            )
    return checks


def check_horovod_build() -> Check:
    """Horovod must load with TensorFlow and have Gloo; MPI and NCCL are reported."""
    try:
        import horovod.tensorflow as hvd
    except Exception as exc:  # an ImportError or a symbol error from a wrongly built .so
        return Check(
            "horovod build",
            "fail",
            f"import horovod.tensorflow failed: {exc}",
            "rebuild it: scripts/setup.sh --force",
        )
    flags = {
        "tensorflow": True,
        "gloo": bool(hvd.gloo_built()),
        "mpi": bool(hvd.mpi_built()),
        "nccl": bool(hvd.nccl_built()),
    }
    detail = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in flags.items())
    if not flags["gloo"]:
        return Check(
            "horovod build",
            "fail",
            detail,
            "rebuild with HOROVOD_WITH_GLOO=1: scripts/setup.sh --force",
        )
    return Check("horovod build", "ok", detail)


def check_keras() -> Check:
    """tf.keras must be Keras 2 for Horovod's Keras optimizer wrapper."""
    try:
        import tensorflow as tf
    except Exception as exc:
        return Check("tf.keras", "fail", f"import tensorflow failed: {exc}", "run scripts/setup.sh")
    # tf.keras is a lazy alias; Keras 2 keeps its Model in keras.src.engine, Keras 3 does not.
    module = tf.keras.Model.__module__
    if ".engine." in module:
        return Check("tf.keras", "ok", f"Keras 2 (tf.keras.Model from {module})")
    return Check(
        "tf.keras",
        "fail",
        f"Keras 3 or newer (tf.keras.Model from {module})",
        "install tensorflow-cpu==2.15.1 (Keras 2)",
    )


def check_hardware() -> Check:
    """Report usable CPUs and GPUs (TensorFlow's view, and nvidia-smi's when present)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = "unknown"
    try:
        import tensorflow as tf

        gpus = str(len(tf.config.list_physical_devices("GPU")))
    except Exception as exc:
        logger.debug("TensorFlow GPU listing failed: %s", exc)
    smi = ""
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        smi = f", nvidia-smi lists {len(out.stdout.splitlines())}"
    return Check("hardware", "ok", f"{cpus} CPUs, {gpus} GPUs visible to TensorFlow{smi}")


def check_identity() -> Check:
    """``import sparkdl`` must be this project, not Databricks' old package."""
    ident = inspect_identity()
    if not ident.is_this_project:
        return Check(
            "import sparkdl",
            "fail",
            f"resolves to {ident.module_file} (not this project)",
            "pip uninstall sparkdl, or use a fresh venv",
        )
    if ident.foreign_distribution or ident.shadowed_copies:
        others = ", ".join(ident.shadowed_copies) or f"sparkdl=={ident.foreign_distribution}"
        return Check(
            "import sparkdl",
            "warn",
            f"{ident.module_file}; also on the path: {others}",
            "remove the other copy so executors cannot import it",
        )
    return Check("import sparkdl", "ok", ident.module_file)


def check_spark_session() -> Check:
    """Start a local[1] JVM and run one tiny job."""
    from sparkdl.config import SparkConfig
    from sparkdl.session import build_session, stop_session

    try:
        spark = build_session(SparkConfig(cores=1, app_name="sparkdl-doctor", log_level="ERROR"))
        n = spark.range(10).count()
        version = spark.version
        stop_session(spark)  # only a session doctor started itself
    except Exception as exc:
        return Check(
            "spark session",
            "fail",
            f"local[1] failed: {str(exc)[:300]}",
            "check Java (JAVA_HOME) and that pyspark matches: scripts/setup.sh",
        )
    if n != 10:
        return Check("spark session", "fail", f"count of range(10) returned {n}")
    return Check("spark session", "ok", f"Spark {version}: local[1] started and ran a job")


def run_checks(*, spark: bool = True) -> list[Check]:
    """Run every check and return the results in display order.

    Parameters
    ----------
    spark : bool
        Also start a local JVM and run a job (about 5 s).

    Examples
    --------
    >>> all(c.status != "fail" for c in run_checks(spark=False))  # doctest: +SKIP
    True
    """
    steps: list[Callable[[], Check | Iterable[Check]]] = [
        check_python,
        check_java,
        check_identity,
        check_versions,
        check_keras,
        check_horovod_build,
        check_hardware,
    ]
    if spark:
        steps.append(check_spark_session)
    out: list[Check] = []
    for step in steps:
        result = step()
        out.extend([result] if isinstance(result, Check) else result)
    return out


def format_checks(checks: Iterable[Check]) -> str:
    """Render checks as an aligned table with fixes under the failing lines."""
    rows = list(checks)
    width = max(len(c.name) for c in rows)
    lines = []
    for c in rows:
        lines.append(f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in rows)
    lines.append("stack is healthy" if not failed else f"{failed} problem(s) found")
    return "\n".join(lines)


def checks_as_dicts(checks: Iterable[Check]) -> list[dict[str, str]]:
    """Return checks as plain dicts (for ``--json``)."""
    return [asdict(c) for c in checks]
