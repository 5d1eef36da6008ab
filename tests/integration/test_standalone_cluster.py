"""Every job on a standalone cluster whose nodes share no disk, and the loss of a whole node.

One cluster for the module: ``scripts/cluster.sh start --nodes 3`` (1 core each, ports
7177/8180; see tests/integration/multinode.py). Each node has its own disk and /tmp; the driver
(this machine) and the nodes share only the cluster's shared dir, where every input and output
of these tests lives. Every job goes through ``scripts/submit.sh`` (the project as a wheel, the
venv packed for the executors): the pipeline (its run folder a ``file:`` URI), and each of
generate, prepare, train, sgd, kmeans, evaluate and predict on its own, train and sgd while they
lose a node. Each node unpacks the packed environment once, for the pipeline, into its cache
(scripts/executor-python.sh); the later jobs' executors reuse it. The refusal and the
pipeline's rerun submit with the venv's own spark-submit (the nodes run the venv's Python).
Needs root and ``unshare``: skipped without.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.cluster_jobs import (
    RunningJob,
    busy_nodes,
    executor_logs,
    private_files,
    rank_process,
    submit,
    submit_command,
    sweep,
    tail,
    unpackings,
    wait_until,
)
from tests.integration.multinode import (
    MultiNodeCluster,
    command_line,
    multinode_cluster,
    run_cluster_script,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(900)]

PORT, UI_PORT = 7177, 8180
NODES = 3
RUN_ID = "r1"
DATA = ("generate.rows=6000", "generate.label_noise=0.02")
TRAIN = (
    "train.epochs=2",
    "train.batch_size=64",
    "train.learning_rate=0.003",
    "train.model.hidden=32",
)
# Mini-batches of one row: about 10 s of barrier-engine fit, time to lose a node in its middle.
SGD = ("sgd.partitions=2", "sgd.batch_size=1", "sgd.epochs=60")
# The node-loss jobs take an executor on every node: rank 0's node goes, two are left.
THREE_EXECUTORS = ("--conf", "spark.cores.max=3")


@pytest.fixture(scope="module")
def cluster(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNodeCluster]:
    with multinode_cluster(
        repo=repo,
        state=tmp_path_factory.mktemp("standalone"),
        nodes=NODES,
        port=PORT,
        ui_port=UI_PORT,
        worker_memory="1500m",
    ) as c:
        yield c


def test_cluster_script_status_and_idempotent_stop(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "c"
    # nothing started from this folder: stop is a no-op, status says so
    script = {"state": state, "port": PORT + 1, "ui_port": UI_PORT + 1}
    assert run_cluster_script(repo, "stop", **script).returncode == 0
    assert "nothing started" in run_cluster_script(repo, "status", **script).stdout


@dataclass(frozen=True)
class Finished:
    """The pipeline run every later test builds on."""

    shared: Path
    run_dir: Path
    dataset: str
    output: str
    left: dict[int, list[str]]
    unpacked: dict[int, int]


def _pipeline_sets(shared: Path) -> list[str]:
    return [
        *DATA,
        f"generate.output={shared / 'raw'}",
        f"prepare.input.path={shared / 'raw'}",
        f"prepare.output={shared / 'prepared'}",
        f"pipeline.root=file://{shared / 'runs'}",
        "pipeline.compare_mllib=false",
        *TRAIN,
        *SGD,
    ]


@pytest.fixture(scope="module")
def finished(cluster: MultiNodeCluster) -> Finished:
    shared = cluster.shared_dir
    cmd = submit_command(cluster, "pipeline.py", *_pipeline_sets(shared), packed=True)
    out = submit(cluster, [*cmd, "--run-id", RUN_ID])
    return Finished(
        shared=shared,
        run_dir=shared / "runs" / RUN_ID,
        dataset=str(shared / "prepared"),
        output=out,
        unpacked=unpackings(cluster),
        left=sweep(cluster),
    )


def _steps_done(run_dir: Path) -> list[str]:
    steps = json.loads((run_dir / "state.json").read_text())["steps"]
    return sorted(s for s, e in steps.items() if e["status"] == "done")


def test_pipeline_through_submit_sh_writes_every_output_on_the_shared_store(
    cluster: MultiNodeCluster, finished: Finished
) -> None:
    run = finished.run_dir
    out = finished.output
    ran = f"pipeline run {RUN_ID}: ran generate, prepare, train, sgd, kmeans, evaluate, report"
    assert ran in out, tail(out)
    # the executors ran the packed environment, not this machine's venv
    cache = r"/work/\.sparkdl-env/sparkdl-env-[0-9a-f]{16}/bin/python"
    assert re.search(rf"executors' Python: \S+{cache}", out), tail(out)
    # its two executors' nodes unpacked the environment, each once (however many workers)
    assert sorted(finished.unpacked.values()) == [0, 1, 1], finished.unpacked
    all_steps = ["evaluate", "generate", "kmeans", "prepare", "report", "sgd", "train"]
    assert _steps_done(run) == all_steps
    train = json.loads((run / "train" / "metrics.json").read_text())
    assert train["weights_identical_on_all_ranks"] is True and train["test"]["accuracy"] > 0.75
    assert [h["epoch"] for h in train["history"]] == [0, 1]
    assert (run / "train" / "model" / "sparkdl_model.json").is_file()
    assert (run / "train" / "checkpoints" / "checkpoint.json").is_file()
    assert list((run / "train" / "tensorboard").rglob("events.out.tfevents.*"))
    assert json.loads((run / "sgd" / "metrics.json").read_text())["partitions"] == 2
    assert (run / "sgd" / "model.npz").is_file() and (run / "kmeans" / "model.npz").is_file()
    evaluated = json.loads((run / "evaluate" / "metrics.json").read_text())["metrics"]
    assert evaluated["accuracy"] == pytest.approx(train["test"]["accuracy"], abs=0.02)
    assert (run / "report" / "report.md").is_file()
    assert (finished.shared / "raw" / "_SUCCESS").is_file()
    # nothing of what the jobs wrote stayed on a node: only Spark's, the JVM's, TF's scratch
    assert finished.left == {}
    planted = [cluster.node_view(2, "/tmp/staged"), cluster.node_view(2, cluster.node_dir(2) / "x")]
    for path in planted:  # and the check sees what is left there
        path.write_text("left behind")
    assert private_files(cluster, 2) == ["node/x", "tmp/staged"]
    for path in planted:
        path.unlink()

    # the rerun of the finished run does nothing (and changes nothing)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    cmd = submit_command(cluster, "pipeline.py", *_pipeline_sets(finished.shared))
    again = submit(cluster, [*cmd, "--run-id", RUN_ID])
    did_nothing = f"pipeline run {RUN_ID}: nothing left to run; skipped (done earlier): generate, "
    assert did_nothing in again, tail(again)
    changed = [
        p for p, t in before.items() if p.stat().st_mtime_ns != t and p.name != "pipeline.log"
    ]
    assert changed == []
    assert _steps_done(run) == all_steps
    assert sweep(cluster) == {}


def test_each_job_through_submit_sh_on_its_own_writes_on_the_shared_store(
    cluster: MultiNodeCluster, finished: Finished
) -> None:
    import pyarrow.parquet as pq

    solo = finished.shared / "solo"
    # one executor each: evaluate and predict (on raw CSV) run while generate, prepare and
    # kmeans run one after the other
    one = ("--conf", "spark.cores.max=1")
    model = f"file://{finished.run_dir / 'train' / 'model'}"
    beside = {
        "evaluate": (
            "evaluate.py",
            f"evaluate.model={model}",
            f"evaluate.output=file://{solo / 'evaluate'}",
        ),
        "predict": (
            "predict.py",
            f"predict.model={model}",
            f"predict.raw.path={finished.shared / 'raw'}",
            f"predict.output={solo / 'predicted'}",
        ),
    }
    running = {
        name: RunningJob(cluster, submit_command(cluster, *job, packed=True, conf=one))
        for name, job in beside.items()
    }
    try:
        jobs = {
            "generate_data.py": ("generate.rows=2000", f"generate.output={solo / 'raw'}"),
            "prepare_data.py": (
                f"prepare.input.path={solo / 'raw'}",
                f"prepare.output={solo / 'prepared'}",
            ),
            "kmeans.py": (
                f"kmeans.dataset={solo / 'prepared'}",
                f"kmeans.output=file://{solo / 'kmeans'}",
                "kmeans.k=2",
                "kmeans.partitions=1",
            ),
        }
        outs = {
            job: submit(cluster, submit_command(cluster, job, *sets, packed=True, conf=one))
            for job, sets in jobs.items()
        }
        done = {name: job.finish() for name, job in running.items()}
    finally:
        for job in running.values():
            job.stop()
    assert "OK: wrote 2000 classification rows" in outs["generate_data.py"], tail(
        outs["generate_data.py"]
    )
    assert "2000 rows in, 2000 valid, 0 quarantined" in outs["prepare_data.py"]
    (manifest,) = (solo / "prepared").glob("versions/*/manifest.json")
    splits = json.loads(manifest.read_text())["splits"]
    assert sum(split["rows"] for split in splits.values()) == 2000
    kmeans = json.loads((solo / "kmeans" / "metrics.json").read_text())
    assert kmeans["config"]["k"] == 2 and (solo / "kmeans" / "model.npz").is_file()
    metrics = json.loads((solo / "evaluate" / "metrics.json").read_text())["metrics"]
    train = json.loads((finished.run_dir / "train" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(train["test"]["accuracy"], abs=0.02), done
    assert f"wrote 6000 predictions to file:{solo / 'predicted'}" in done["predict"], tail(
        done["predict"]
    )
    table = pq.read_table(solo / "predicted")
    assert table.num_rows == 6000 and "prediction" in table.column_names
    # the five applications shipped the packed environment; the executors of kmeans, evaluate
    # and predict ran it from their node's cache (their copy of the archive is gone), with no
    # unpacking where the pipeline had unpacked it; generate and prepare run no Python on the
    # executors (their copy is left)
    assert len(_apps_with(cluster, "sparkdl-python-*")) == 5
    assert len(_apps_with(cluster, "sparkdl-env-*.pack")) == 2
    now = unpackings(cluster)
    assert all(now[i] == 0 for i, n in finished.unpacked.items() if n), (now, finished.unpacked)
    assert all(n <= 1 for n in now.values()), now
    assert sweep(cluster) == {}


def _apps_with(c: MultiNodeCluster, pattern: str) -> set[str]:
    """The applications with ``pattern`` in one of their executors' working dirs."""
    found = set()
    for i in range(1, c.nodes + 1):
        work = c.node_view(i, c.node_dir(i) / "work")
        found |= {p.relative_to(work).parts[0] for p in work.glob(f"app-*/*/{pattern}")}
    return found


def test_an_output_only_the_driver_sees_is_refused_before_the_stage(
    cluster: MultiNodeCluster, finished: Finished, tmp_path: Path
) -> None:
    # tmp_path is under this machine's /tmp: the nodes have their own /tmp
    output = tmp_path / "train"
    cmd = submit_command(
        cluster, "train_horovod.py", f"train.dataset={finished.dataset}", f"train.output={output}"
    )
    out = submit(cluster, cmd, expect=2)
    assert f"train.output={output} is not shared with the executors" in out, tail(out)
    assert "it cannot see the file the driver wrote there" in out
    assert "every node must reach train.output: use a folder every node mounts (NFS, /dbfs)" in out
    assert "Horovod rendezvous server" not in out and "Spark barrier tasks" not in out
    assert not (output / "run.json").exists() and not (output / "checkpoints").exists()


def _model_weights(model_dir: Path) -> list[object]:
    import tensorflow as tf

    return tf.keras.models.load_model(str(model_dir), compile=False).get_weights()


@pytest.fixture
def all_nodes(cluster: MultiNodeCluster) -> MultiNodeCluster:
    """The cluster with every node up (a test before may have lost one)."""
    for i in range(1, cluster.nodes + 1):
        if not cluster.alive(i):
            cluster.start_node(i)
    return cluster


def test_losing_rank_0s_node_mid_epoch_resumes_elsewhere_with_identical_weights(
    all_nodes: MultiNodeCluster, finished: Finished
) -> None:
    import numpy as np

    c = all_nodes
    output = finished.shared / "node-lost"
    cmd = submit_command(
        c,
        "train_horovod.py",
        f"train.dataset={finished.dataset}",
        f"train.output={output}",
        *TRAIN,
        # rank 0 stops in the middle of epoch 1 of attempt 1, once epoch 0's checkpoint is out,
        # so that the node is lost mid-epoch whatever the machine's speed
        "train.fault.kind=stall",
        "train.fault.rank=0",
        "train.fault.epoch=1",
        "train.fault.batch=2",
        packed=True,
        conf=THREE_EXECUTORS,
    )
    job = RunningJob(c, cmd)
    try:
        pointer = output / "checkpoints" / "checkpoint.json"
        wait_until(
            "epoch 0's checkpoint",
            lambda: pointer.is_file() and "epoch" in pointer.read_text(),
            job,
            300,
        )
        node, pid = wait_until("rank 0's process", lambda: rank_process(c, 0), job, 60)
        stalled = "sparkdl fault injection: stall at rank 0, epoch 1, batch 2, attempt 0"
        wait_until(
            "rank 0 in epoch 1",
            lambda: any(stalled in log for log in executor_logs(c, node)),
            job,
            120,
        )
        assert json.loads(pointer.read_text())["epoch"] == 0
        c.kill_node(node)  # its worker, executor, Python worker and rank 0 at once
        assert not Path(f"/proc/{pid}").exists() or command_line(pid) == ""
        out = job.finish()
    finally:
        job.stop()
    assert not c.alive(node)  # the retry ran without that node: rank 0 was elsewhere
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["attempts"] == 2 and metrics["resumed_from_epoch"] == 0, tail(out)
    assert [h["epoch"] for h in metrics["history"]] == [0, 1]  # each epoch once
    assert "epoch 2/2 (attempt 2)" in out
    # the same weights as the uninterrupted run of the same config (the pipeline's train step)
    reference = finished.run_dir / "train"
    assert metrics["test"] == json.loads((reference / "metrics.json").read_text())["test"]
    resumed, plain = _model_weights(output / "model"), _model_weights(reference / "model")
    assert len(resumed) == len(plain) > 0
    assert all(np.array_equal(a, b) for a, b in zip(resumed, plain, strict=True))
    assert sweep(c) == {}  # the nodes left: no staged checkpoint, model or events


def test_losing_a_node_of_the_sgd_barrier_stage_gives_the_undisturbed_model(
    all_nodes: MultiNodeCluster, finished: Finished
) -> None:
    import numpy as np

    c = all_nodes
    output = finished.shared / "sgd-node-lost"
    cmd = submit_command(
        c,
        "parallel_sgd.py",
        f"sgd.dataset={finished.dataset}",
        f"sgd.output={output}",
        *SGD,
        packed=True,
        conf=THREE_EXECUTORS,
    )
    job = RunningJob(c, cmd)
    try:
        wait_until("epoch 1", lambda: "ParallelSGD after epoch 1:" in job.output(), job, 300)
        busy = busy_nodes(c)
        assert len(busy) == 2, busy  # the two live barrier tasks, one per node
        c.kill_node(busy[0])
        out = job.finish()
    finally:
        job.stop()
    assert re.search(r"engine attempt 1 of 3 failed, starting again", out), tail(out)
    lost = np.load(output / "model.npz")
    plain = np.load(finished.run_dir / "sgd" / "model.npz")
    assert sorted(lost.files) == sorted(plain.files) == ["W", "b"]
    assert all(np.array_equal(lost[k], plain[k]) for k in plain.files)
    assert sweep(c) == {}
