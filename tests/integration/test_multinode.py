"""Nodes that share no disk: ``scripts/cluster.sh start --nodes 2`` on 127.0.0.1.

One master and two workers, each in its own mount namespace with a private node dir and a
private ``/tmp``; a real driver in its own process (``multinode_probe.py``) runs a barrier job
with one task per node. Needs root and ``unshare``; skipped with the script's message without.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.multinode import (
    EXIT_UNSUPPORTED,
    MultiNodeCluster,
    command_line,
    multinode_cluster,
    processes_in_namespace,
    run_cluster_script,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PORT, UI_PORT = 7277, 8280  # not 7077/8080 (the default) nor 7177/8180 (test_standalone_cluster)


@pytest.fixture(scope="module")
def cluster(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNodeCluster]:
    with multinode_cluster(
        repo=repo, state=tmp_path_factory.mktemp("multinode"), nodes=2, port=PORT, ui_port=UI_PORT
    ) as c:
        yield c


@dataclass
class Probe:
    """The probe driver, still holding its executors, and the report it printed."""

    proc: subprocess.Popen[str]
    report: dict
    token: str
    log: Path

    def finish(self) -> None:
        """Close the driver's stdin: it stops its SparkSession and exits."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def probe(
    cluster: MultiNodeCluster, repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Probe]:
    import json

    token = uuid.uuid4().hex
    log = tmp_path_factory.mktemp("probe") / "driver.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(repo / "tests" / "integration" / "multinode_probe.py"),
                *("--master", cluster.master_url, "--executors", str(cluster.nodes)),
                *("--cluster-dir", str(cluster.state), "--token", token),
            ],
            env=cluster.driver_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 240)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        pytest.fail(f"the probe driver printed no report:\n{log.read_text()[-4000:]}")
    p = Probe(proc=proc, report=json.loads(line), token=token, log=log)
    yield p
    p.finish()


def _marker(p: Probe, node: int) -> str:
    return f"marker-{p.token}-node-{node}"


def test_each_node_sees_only_its_own_disk_and_all_see_the_shared_dir(
    cluster: MultiNodeCluster, probe: Probe
) -> None:
    tasks = {t["node"]: t for t in probe.report["tasks"]}
    assert sorted(tasks) == ["1", "2"], probe.report  # one barrier task on each node
    shared = str(cluster.shared_dir)
    both = [_marker(probe, 1), _marker(probe, 2)]
    host_ns = os.readlink("/proc/self/ns/mnt")
    for i in (1, 2):
        task, other = tasks[str(i)], 3 - i
        assert task["ns"] == cluster.namespace(i) != host_ns
        assert task["node_dir"] == str(cluster.node_dir(i))
        seen = task["listing"]
        assert seen[str(cluster.node_dir(i))] == [_marker(probe, i)]
        assert seen[str(cluster.node_dir(other))] == []
        assert seen["/tmp"] == [_marker(probe, i)]
        assert seen[shared] == both
        # the node's own files are really on its disk: read through its worker's root
        view = cluster.node_view(i, cluster.node_dir(i) / _marker(probe, i))
        assert view.read_text() == str(i)
        assert cluster.node_view(i, Path("/tmp") / _marker(probe, i)).read_text() == str(i)
    driver = probe.report["driver"]
    assert driver["ns"] == host_ns
    assert driver["listing"][shared] == both
    assert driver["listing"]["/tmp"] == []
    assert driver["listing"][str(cluster.node_dir(1))] == []
    assert driver["listing"][str(cluster.node_dir(2))] == []
    # and from this (the test's) process too
    assert sorted(os.listdir(cluster.shared_dir)) == both
    assert not list(Path("/tmp").glob(f"marker-{probe.token}-*"))
    assert not any((cluster.node_dir(i) / _marker(probe, i)).exists() for i in (1, 2))


def test_status_lists_nodes_namespaces_shared_dir_and_workers(cluster: MultiNodeCluster) -> None:
    done = cluster.script("status")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for i in (1, 2):
        assert f"node-{i}: running (pid {cluster.worker_pid(i)}, {cluster.namespace(i)}" in out
        assert f"{cluster.worker_address(i)} ALIVE (node-{i})" in out
    assert f"shared dir {cluster.shared_dir}" in out
    assert f"master {cluster.master_url}: 2 worker(s) registered" in out


def test_kill_node_kills_every_process_of_the_node_and_start_node_brings_a_fresh_one(
    cluster: MultiNodeCluster, probe: Probe
) -> None:
    ns1, ns2 = cluster.namespace(1), cluster.namespace(2)
    address = cluster.worker_address(1)
    before = {pid: command_line(pid) for pid in processes_in_namespace(ns1)}
    orphan = next(t["orphan_pid"] for t in probe.report["tasks"] if t["node"] == "1")
    commands = " | ".join(before.values())
    assert cluster.worker_pid(1) in before and "deploy.worker.Worker" in commands
    assert "CoarseGrainedExecutorBackend" in commands and "pyspark.daemon" in commands
    assert orphan in before and before[orphan].startswith("sleep ")  # its own session
    assert os.getsid(orphan) == orphan
    node2 = set(processes_in_namespace(ns2))

    cluster.kill_node(1)
    assert processes_in_namespace(ns1) == []
    assert not any(Path(f"/proc/{pid}/ns/mnt").exists() for pid in before)
    cluster.wait_worker_state(address, "DEAD", timeout=60)
    assert node2 <= set(processes_in_namespace(ns2))  # the other node is untouched
    assert probe.proc.poll() is None  # the application survives the loss of a node
    listed = cluster.script("status").stdout
    assert f"node-1: not running ({ns1}, 0 process(es) left)" in listed
    assert "1 worker(s) registered" in listed
    assert cluster.script("kill-node", "1").returncode == 0  # nothing left: a no-op

    cluster.start_node(1)
    cluster.wait_worker_state(cluster.worker_address(1), "ALIVE", timeout=10)
    assert sum(w["state"] == "ALIVE" for w in cluster.workers()) == 2
    # a fresh node: its disk and /tmp lost what the killed one wrote
    assert not cluster.node_view(1, cluster.node_dir(1) / _marker(probe, 1)).exists()
    assert not cluster.node_view(1, Path("/tmp") / _marker(probe, 1)).exists()
    assert cluster.node_view(1, cluster.node_dir(1) / "work").is_dir()


def test_stop_leaves_no_process_of_the_cluster_and_touches_no_other(
    cluster: MultiNodeCluster, probe: Probe
) -> None:
    probe.finish()
    namespaces = [cluster.namespace(i) for i in (1, 2)]
    master = int((cluster.state / "pids" / "master.pid").read_text())
    orphan2 = next(t["orphan_pid"] for t in probe.report["tasks"] if t["node"] == "2")
    assert orphan2 in processes_in_namespace(namespaces[1])  # outlived the application
    # the nodes' processes, each by pid and start time (a pid may be reused after the stop;
    # so may a namespace's inode number, by a node another test file's cluster starts)
    before = {(pid, _started(pid)) for ns in namespaces for pid in processes_in_namespace(ns)}
    assert orphan2 in {pid for pid, _ in before}, before
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        stopped = cluster.script("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert [p for p, started in before if _started(p) == started] == []
        nodes = {f"SPARKDL_NODE_DIR={cluster.node_dir(i)}".encode() for i in (1, 2)}
        left = [p for ns in namespaces for p in processes_in_namespace(ns) if _environ(p) & nodes]
        assert left == []
        assert not Path(f"/proc/{master}").exists() or command_line(master) == ""
        assert bystander.poll() is None
        assert "nothing started" in cluster.script("status").stdout
        assert cluster.script("stop").returncode == 0  # idempotent
    finally:
        bystander.kill()
        bystander.wait()


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _environ(pid: int) -> set[bytes]:
    try:
        return set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return set()


def _path_without(tool: str, into: Path) -> str:
    """A PATH holding every command of this PATH but ``tool`` (links in ``into``)."""
    into.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = Path(folder, name)
            if name != tool and not (into / name).exists() and os.access(target, os.X_OK):
                (into / name).symlink_to(target)
    return str(into)


def test_start_nodes_without_unshare_says_so_and_starts_nothing(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "c"
    done = run_cluster_script(
        repo,
        "start",
        "--nodes",
        "2",
        state=state,
        port=PORT + 1,
        ui_port=UI_PORT + 1,
        env={"PATH": _path_without("unshare", tmp_path / "bin")},
        timeout=30,
    )
    assert done.returncode == EXIT_UNSUPPORTED, done.stderr
    assert "needs unshare (util-linux) on PATH" in done.stderr
    assert not state.exists()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_start_nodes_as_another_user_says_it_needs_root(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "c"
    script = [str(repo / "scripts" / "cluster.sh"), "start", "--nodes", "2"]
    if os.geteuid() == 0:  # run it as nobody; elsewhere this process is already not root
        script = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *script]
    started = time.monotonic()
    done = subprocess.run(
        script,
        env={**os.environ, "SPARKDL_CLUSTER_DIR": str(state), "SPARKDL_NODES": "2"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == EXIT_UNSUPPORTED, done.stderr
    assert "needs root (running as uid " in done.stderr
    assert not state.exists() and time.monotonic() - started < 10
