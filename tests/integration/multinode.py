"""A simulated multi-node Spark standalone cluster for tests: nodes that share no disk.

``scripts/cluster.sh start --nodes N`` runs a master and N workers on 127.0.0.1, each worker
(with its executors, Python workers and rank processes) in its own mount namespace with a
private node dir and a private ``/tmp``; one shared dir stands for the cluster file system.
This module starts and stops such a cluster from a test and answers the questions a test asks
about it. It needs root and ``unshare``: where either is missing, :func:`multinode_cluster`
skips the test with the script's own message.

Example (in a test module)::

    @pytest.fixture(scope="module")
    def nodes(repo, tmp_path_factory):
        with multinode_cluster(repo=repo, state=tmp_path_factory.mktemp("mn"), nodes=2,
                               port=7277, ui_port=8280) as cluster:
            yield cluster

    def test_x(nodes):
        subprocess.run([..., "--master", nodes.master_url], env=nodes.driver_env(), ...)
        nodes.kill_node(1)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EXIT_UNSUPPORTED = 77  # scripts/cluster.sh: --nodes cannot run here (not root, no unshare)
# Spark conf for every application on such a cluster. All nodes are 127.0.0.1, so Spark takes
# them for one host and an executor reads another's shuffle files straight from "its own" disk
# (spark.shuffle.readHostLocalDisk), which fails here with NoSuchFileException on
# blockmgr-*/shuffle_*.index: on real nodes, with their own host names, it never tries.
SUBMIT_CONF = ("--conf", "spark.shuffle.readHostLocalDisk=false")


def processes_in_namespace(ns: str) -> list[int]:
    """The live processes whose mount namespace is ``ns`` (``"mnt:[4026532178]"``)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/ns/mnt") == ns:
                    pids.append(int(entry.name))
    return sorted(pids)


def command_line(pid: int) -> str:
    """The command line of ``pid``, or ``""`` when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class MultiNodeCluster:
    """A running ``scripts/cluster.sh start --nodes N`` cluster, as a test sees it."""

    repo: Path
    state: Path
    nodes: int
    port: int
    ui_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        """``spark://127.0.0.1:PORT``."""
        return f"spark://127.0.0.1:{self.port}"

    @property
    def shared_dir(self) -> Path:
        """The directory every node and the driver see (the cluster file system)."""
        return Path(self.env.get("SPARKDL_SHARED_DIR", self.state / "shared"))

    def node_dir(self, i: int) -> Path:
        """Node ``i``'s private dir, as a path on that node (empty from anywhere else)."""
        return self.state / "nodes" / f"node-{i}"

    def node_view(self, i: int, path: Path | str) -> Path:
        """``path`` as node ``i`` sees it, reachable from the host (through its worker's
        ``/proc/PID/root``): read a node's private files without running on it."""
        return Path(f"/proc/{self.worker_pid(i)}/root") / Path(path).relative_to("/")

    def worker_pid(self, i: int) -> int:
        """The pid of node ``i``'s worker JVM (as recorded; it may be dead)."""
        return int((self.state / "pids" / f"node-{i}.pid").read_text())

    def namespace(self, i: int) -> str:
        """Node ``i``'s mount namespace, ``"mnt:[inode]"``."""
        return (self.state / "pids" / f"node-{i}.ns").read_text().strip()

    def node_pids(self, i: int) -> list[int]:
        """Every live process of node ``i``: worker, executors, Python workers, orphans."""
        return processes_in_namespace(self.namespace(i))

    def alive(self, i: int) -> bool:
        """Whether node ``i``'s worker JVM runs."""
        return bool(command_line(self.worker_pid(i)))

    def script(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``scripts/cluster.sh ARGS`` against this cluster's state dir and ports."""
        return run_cluster_script(
            self.repo,
            *args,
            state=self.state,
            port=self.port,
            ui_port=self.ui_port,
            env=self.env,
            timeout=timeout,
        )

    def kill_node(self, i: int) -> None:
        """Lose node ``i``: SIGKILL every process in its namespace at once."""
        done = self.script("kill-node", str(i))
        if done.returncode != 0:
            raise RuntimeError(f"kill-node {i} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start_node(self, i: int) -> None:
        """Start node ``i`` again (a fresh node dir and /tmp) and wait for its registration."""
        done = self.script("start-node", str(i))
        if done.returncode != 0:
            raise RuntimeError(f"start-node {i} failed ({done.returncode}): {done.stderr[-2000:]}")

    def workers(self) -> list[dict[str, object]]:
        """The workers the master's JSON lists (``id``, ``host``, ``port``, ``state``, ...)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return list(json.load(r).get("workers", []))

    def worker_address(self, i: int) -> str:
        """``host:port`` of node ``i``'s current worker, from its log."""
        for line in reversed((self.state / "logs" / f"node-{i}.log").read_text().splitlines()):
            if "Starting Spark worker " in line:
                return line.split("Starting Spark worker ", 1)[1].split()[0]
        raise RuntimeError(f"node-{i} has not logged its worker address yet")

    def wait_worker_state(self, address: str, state: str, *, timeout: float = 60) -> None:
        """Wait until the master lists the worker at ``address`` in ``state`` (ALIVE, DEAD)."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            seen = self.workers()
            if any(f"{w['host']}:{w['port']}" == address and w["state"] == state for w in seen):
                return
            time.sleep(0.3)
        raise TimeoutError(f"the master did not list worker {address} as {state}: {seen}")

    def driver_env(self) -> dict[str, str]:
        """Environment for a driver process on the host: the venv's Python on both sides."""
        venv_bin = self.repo / ".venv" / "bin"
        return {
            **os.environ,
            "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
            "PYSPARK_PYTHON": str(venv_bin / "python"),
            "SPARK_LOCAL_IP": "127.0.0.1",
        }


def run_cluster_script(
    repo: Path,
    *args: str,
    state: Path,
    port: int,
    ui_port: int,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/cluster.sh ARGS`` with a state dir and ports of its own."""
    full = {
        **os.environ,
        "SPARKDL_CLUSTER_DIR": str(state),
        "SPARKDL_MASTER_PORT": str(port),
        "SPARKDL_MASTER_UI_PORT": str(ui_port),
        **(env or {}),
    }
    return subprocess.run(
        [str(repo / "scripts" / "cluster.sh"), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def multinode_cluster(
    *,
    repo: Path,
    state: Path,
    nodes: int = 2,
    port: int,
    ui_port: int,
    worker_memory: str = "1g",
    worker_cores: int = 1,
    env: dict[str, str] | None = None,
) -> Iterator[MultiNodeCluster]:
    """Start a master and ``nodes`` namespaced workers; stop them all on exit.

    Skips the calling test, with the script's message, where the machine cannot run it (not
    root, no ``unshare``, no mount namespaces: exit code 77). Any other failure raises.

    Examples
    --------
    >>> with multinode_cluster(repo=REPO, state=tmp, nodes=2, port=7277, ui_port=8280) as c:
    ...     c.kill_node(1)  # doctest: +SKIP
    """
    extra = {
        "SPARKDL_WORKER_MEMORY": worker_memory,
        "SPARKDL_WORKER_CORES": str(worker_cores),
        # The daemons only route RPCs: with C1 alone and the serial GC, `start --nodes 2` took
        # 13.6 and 15.4 s instead of 19.3 and 27.8 s here (2 cores, load 6-9).
        "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        **(env or {}),
    }
    cluster = MultiNodeCluster(
        repo=repo, state=state, nodes=nodes, port=port, ui_port=ui_port, env=extra
    )
    started = cluster.script("start", "--nodes", str(nodes))
    if started.returncode == EXIT_UNSUPPORTED:
        cluster.script("stop")
        pytest.skip(started.stderr.strip().removeprefix("[cluster] UNSUPPORTED: "))
    try:
        if started.returncode != 0:
            raise RuntimeError(
                f"scripts/cluster.sh start --nodes {nodes} failed ({started.returncode}):\n"
                f"{started.stderr[-4000:]}"
            )
        yield cluster
    finally:
        stopped = cluster.script("stop")
        if stopped.returncode != 0:
            raise RuntimeError(f"scripts/cluster.sh stop failed: {stopped.stderr[-2000:]}")
