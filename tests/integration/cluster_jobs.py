"""sparkdl jobs on the simulated multi-node cluster (:mod:`tests.integration.multinode`).

Submit a job (with ``scripts/submit.sh`` and the packed environment, or the venv's
spark-submit), follow one while it runs, find where its ranks and tasks run, and list what it
left on a node's own disk and /tmp beyond scratch.

Example (in a test)::

    out = submit(c, submit_command(c, "train_horovod.py", "train.epochs=2", packed=True))
    job = RunningJob(c, submit_command(c, "parallel_sgd.py"))
    wait_until("epoch 1", lambda: "after epoch 1:" in job.output(), job, timeout=300)
    c.kill_node(busy_nodes(c)[0])
    job.finish()
    assert sweep(c) == {}
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.multinode import SUBMIT_CONF, MultiNodeCluster, command_line

T = TypeVar("T")
# The drivers' and executors' JVMs run small jobs: with C1 alone and the serial GC the pipeline
# took 117 s instead of 141 s here (its prepare step's fit 8.1 s instead of 15.3 s).
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
JVM_CONF = (
    *("--conf", f"spark.driver.extraJavaOptions={QUICK_JVM}"),
    *("--conf", f"spark.executor.extraJavaOptions={QUICK_JVM}"),
)

# What a job may leave on a node's own disk and /tmp: Spark's, the JVM's and TensorFlow's
# scratch. Paths are relative to the node dir ("node/..."), /tmp ("tmp/...") or /dev/shm.
SCRATCH = [
    re.compile(p)
    for p in (
        # the packed environment (where no Python worker started) and submit.sh's launcher
        # (scripts/executor-python.sh); spark-submit's --py-files and --files; the executor's log
        r"^node/work/app-[0-9-]+/\d+/(sparkdl-(python-[0-9a-f]+|env-[0-9a-f]+\.pack)"
        r"|[^/]+\.(zip|yaml)|stdout|stderr)$",
        # the node's cache of unpacked environments (one per stack), its locks
        r"^node/work/\.sparkdl-env/(\.?sparkdl-env-[0-9a-f]+(/|\.lock$|\.use\.lock$))",
        r"^node/local/spark-[^/]+/",  # Spark's local dirs: block manager, fetch cache
        r"^tmp/hsperfdata_[^/]+/",  # the JVM's performance counters
        r"^tmp/spark-[^/]+/",  # Spark's temporary dirs (an archive while it is fetched)
        r"^tmp/__autograph_generated_file\w+\.py$",  # TensorFlow AutoGraph's generated code
    )
]


def submit_command(
    c: MultiNodeCluster, job: str, *sets: str, packed: bool = False, conf: tuple[str, ...] = ()
) -> list[str]:
    """The command line that submits ``jobs/<job>`` to ``c`` with the local and standalone
    profiles and ``--set`` overrides: through ``scripts/submit.sh`` when ``packed``."""
    repo = c.repo
    submit = repo / "scripts" / "submit.sh" if packed else repo / ".venv" / "bin" / "spark-submit"
    configs = [
        "-c",
        str(repo / "conf" / "local.yaml"),
        "-c",
        str(repo / "conf" / "standalone.yaml"),
    ]
    overrides = [x for s in ("spark.log_level=ERROR", *sets) for x in ("--set", s)]
    head = [str(submit), "--master", c.master_url, *SUBMIT_CONF, *JVM_CONF, *conf]
    return [*head, str(repo / "jobs" / job), *configs, *overrides]


def submit(c: MultiNodeCluster, cmd: list[str], *, expect: int = 0) -> str:
    """Run ``cmd`` to its end; return its stdout and stderr (fail unless it exits ``expect``)."""
    done = subprocess.run(
        cmd,
        cwd=c.repo,
        env=c.driver_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == expect, f"exit {done.returncode}: {cmd[-1]}\n{tail(out)}"
    return out


def tail(out: str) -> str:
    """The last lines of a job's output, without Spark's own log lines."""
    lines = [ln for ln in out.splitlines() if not re.match(r"\d\d/\d\d/\d\d \d", ln)]
    return "\n".join(lines[-60:])


class RunningJob:
    """A submitted job, still running, whose output lines are collected as they come."""

    def __init__(self, c: MultiNodeCluster, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=c.repo, env=c.driver_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        """What the job printed so far (stdout and stderr)."""
        return "".join(self.lines)

    def finish(self, *, timeout: float = 600) -> str:
        """Wait for the job's end and return its output; fail unless it exited 0."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        self._reader.join(timeout=10)
        out = self.output()
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n{tail(out)}"
        return out

    def stop(self) -> None:
        """Kill the job's driver if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(what: str, check: Callable[[], T | None], job: RunningJob, timeout: float) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail (with the
    job's output) when the job ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if job.proc.poll() is not None:
            pytest.fail(f"the job ended before {what}:\n{tail(job.output())}")
        time.sleep(0.2)
    job.stop()
    pytest.fail(f"no {what} within {timeout:.0f} s:\n{tail(job.output())}")


def private_files(c: MultiNodeCluster, i: int) -> list[str]:
    """Files on node ``i``'s own disk, /tmp and /dev/shm that are not scratch (``SCRATCH``)."""
    bound = {str(Path(p).resolve()) for p in (c.state, c.shared_dir, c.repo)}
    found = []
    for prefix, top in (("node", c.node_dir(i)), ("tmp", Path("/tmp")), ("shm", Path("/dev/shm"))):
        root = c.node_view(i, top)
        for folder, dirs, files in os.walk(root):
            rel = Path(folder).relative_to(root)
            # the host's folders bound into the node's /tmp are not the node's; skip scratch
            dirs[:] = [
                d
                for d in dirs
                if str(top / rel / d) not in bound
                and not _scratch(f"{prefix}/{(rel / d).as_posix()}/")
            ]
            found += [n for f in files if not _scratch(n := f"{prefix}/{(rel / f).as_posix()}")]
    return sorted(found)


def _scratch(rel: str) -> bool:
    return any(p.search(rel) for p in SCRATCH)


def sweep(c: MultiNodeCluster) -> dict[int, list[str]]:
    """What the finished applications left beyond scratch on each live node ({} if nothing);
    then remove their work dirs (the node's cache of unpacked environments stays)."""
    left = {}
    for i in range(1, c.nodes + 1):
        if not c.alive(i):
            continue
        left[i] = private_files(c, i)
        for app in c.node_view(i, c.node_dir(i) / "work").glob("app-*"):
            shutil.rmtree(app, ignore_errors=True)
    return {i: files for i, files in left.items() if files}


def rank_process(c: MultiNodeCluster, rank: int) -> tuple[int, int] | None:
    """``(node, pid)`` of the live process of Horovod rank ``rank``, if one runs. Rank
    processes are children of an executor's Python worker, started with ``HOROVOD_RANK``."""
    for i in range(1, c.nodes + 1):
        if not c.alive(i):
            continue
        for pid in c.node_pids(i):
            if "sparkdl.launch._entry" not in command_line(pid):
                continue
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"HOROVOD_RANK={rank}".encode() in env:
                return i, pid
    return None


def unpackings(c: MultiNodeCluster) -> dict[int, int]:
    """How many times each live node's executors unpacked the packed environment (in the
    logs of the applications not swept yet)."""
    said = "sparkdl: unpacked the environment into "
    return {
        i: sum(log.count(said) for log in executor_logs(c, i))
        for i in range(1, c.nodes + 1)
        if c.alive(i)
    }


def executor_logs(c: MultiNodeCluster, i: int) -> list[str]:
    """The logs (stderr: Spark's and the Python workers' lines) of node ``i``'s executors."""
    logs = c.node_view(i, c.node_dir(i) / "work").glob("app-*/*/stderr")
    return [log.read_text(errors="replace") for log in logs]


def busy_nodes(c: MultiNodeCluster) -> list[int]:
    """The live nodes whose executor runs a task now (started and not ended, in its log)."""
    busy = []
    for i in range(1, c.nodes + 1):
        if not c.alive(i):
            continue
        for text in executor_logs(c, i):
            started = set(re.findall(r"Running task \S+ in stage \S+ \(TID (\d+)\)", text))
            ended = re.findall(
                r"(?:Finished|killed|Exception in) task \S+ in stage \S+ \(TID (\d+)\)", text
            )
            if started - set(ended):
                busy.append(i)
    return busy
