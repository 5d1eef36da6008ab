"""``sparkdl bench train``: Horovod training throughput, scaling, input and launch overhead.

All measurements run in one invocation on the same prepared data and model:

- Horovod with 1 rank against plain Keras (a separate process, data in memory);
- per-core efficiency: 2 ranks x 1 thread against 2 x (1 rank x 1 thread), and against
  1 rank x 2 threads;
- Parquet-fed (petastorm) against memory-fed training;
- launch overhead (submission until every rank has initialised Horovod) against
  ``horovod.spark.run`` for the same function;
- Horovod all-reduce bus bandwidth at 64 MB against loopback TCP bandwidth.

Throughput is the median of per-epoch samples/s over the epochs after the first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sparkdl.bench.measure import format_table, scratch_dir
from sparkdl.config import SparkdlConfig, load_config

logger = logging.getLogger(__name__)

_MB = 1 << 20


def _rate(history: list[dict[str, float]], samples_per_epoch: int) -> float:
    secs = [h["seconds"] for h in history[1:]] or [history[0]["seconds"]]
    return samples_per_epoch / statistics.median(secs)


def init_probe() -> float:
    """Rank function: initialise Horovod and return the wall-clock time it was ready."""
    import horovod.tensorflow as hvd

    hvd.init()
    ready = time.time()
    hvd.shutdown()
    return ready


def allreduce_probe(megabytes: int, repeats: int) -> float:
    """Rank function: median seconds of an all-reduce of ``megabytes`` of float32."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()
    tensor = tf.ones([megabytes * _MB // 4], tf.float32)
    for i in range(2):
        hvd.allreduce(tensor, op=hvd.Sum, name=f"warm{i}")
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        hvd.allreduce(tensor, op=hvd.Sum, name=f"bench{i}").numpy()
        times.append(time.perf_counter() - start)
    hvd.shutdown()
    return statistics.median(times)


def loopback_tcp_bandwidth(megabytes: int, repeats: int) -> float:
    """Bytes/s of one TCP stream over 127.0.0.1 sending ``megabytes`` per repeat."""
    payload = b"\0" * (megabytes * _MB)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            view = bytearray(4 * _MB)
            while conn.recv_into(view):
                pass

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    times = []
    with socket.create_connection(("127.0.0.1", port)) as client:
        for _ in range(repeats + 1):
            start = time.perf_counter()
            client.sendall(payload)
            times.append(time.perf_counter() - start)
    thread.join(timeout=10)
    server.close()
    return len(payload) / statistics.median(times[1:])


def _keras_child(
    dataset_split: str, threads: int, epochs: int, batch: int, model_json: str
) -> None:
    """Plain Keras on the same rows and model, data in memory; prints median samples/s."""
    import numpy as np
    import pyarrow.parquet as pq
    import tensorflow as tf

    from sparkdl.config.train import ModelConfig
    from sparkdl.train.models import build_model

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    table = pq.read_table(dataset_split.removeprefix("file:"), columns=["features", "label"])
    x = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    y = table.column("label").to_numpy()
    cfg = ModelConfig(**json.loads(model_json))
    model = build_model(cfg, input_dim=x.shape[1], num_classes=int(y.max()) + 1, seed=1)
    model.compile(
        optimizer=tf.keras.optimizers.legacy.Adam(0.001),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    steps = len(x) // batch
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=1).repeat()
    ds = ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    seconds: list[float] = []

    class Timer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds.append(time.perf_counter() - self.t)

    model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[Timer()], verbose=0)
    print(json.dumps({"samples_per_s": steps * batch / statistics.median(seconds[1:])}))


def run_train_bench(
    *, rows: int, epochs: int, batch: int, hidden: int, depth: int, workdir: Path
) -> str:
    """Run every measurement and return the report (see the module docstring)."""
    import horovod.spark

    from sparkdl.config.loader import to_dict
    from sparkdl.data.dataset import open_dataset
    from sparkdl.data.generate import write_generated
    from sparkdl.data.prepare import run_prepare
    from sparkdl.launch.barrier import BarrierLauncher
    from sparkdl.session import build_session
    from sparkdl.train.runner import run_training, split_steps

    repo = Path(__file__).resolve().parents[2]
    base = load_config(
        SparkdlConfig,
        files=[repo / "conf" / "local.yaml"],
        overrides=[
            f"generate.rows={rows}",
            f"generate.output={workdir / 'raw'}",
            f"prepare.input.path={workdir / 'raw'}",
            f"prepare.output={workdir / 'prepared'}",
            "prepare.split={train: 1.0, validation: 0.0, test: 0.0}",
            "spark.log_level=ERROR",
            f"train.model.hidden={hidden}",
            f"train.model.depth={depth}",
        ],
    )
    spark = build_session(base.spark, launch=base.launch)
    write_generated(spark, cfg=base.generate)
    run_prepare(spark, cfg=base.prepare)
    ds = open_dataset(spark, str(workdir / "prepared"))
    rates: dict[str, float] = {}
    runs = {
        "hvd 1 rank x 1 thread, parquet": (1, 1, "parquet"),
        "hvd 1 rank x 1 thread, memory": (1, 1, "memory"),
        "hvd 2 ranks x 1 thread, parquet": (2, 1, "parquet"),
        "hvd 1 rank x 2 threads, parquet": (1, 2, "parquet"),
    }
    for i, (name, (workers, threads, source)) in enumerate(runs.items()):
        launch = dataclasses.replace(base.launch, num_workers=workers, threads_per_worker=threads)
        train = dataclasses.replace(
            base.train,
            dataset=str(workdir / "prepared"),
            output=str(workdir / f"run-{i}"),
            epochs=epochs,
            batch_size=batch,
            data_source=source,
            tensorboard=False,
            warmup_epochs=0.0,
        )
        result = run_training(spark, train=train, launch=launch)
        per_epoch = split_steps(ds, "train", workers=workers, batch=batch) * batch * workers
        rates[name] = _rate(result.history, per_epoch)
        logger.info("%s: %.0f samples/s", name, rates[name])
    model_json = json.dumps(to_dict(base.train.model))
    keras = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkdl.bench.train_bench",
            "keras",
            ds.split_path("train"),
            "1",
            str(epochs),
            str(batch),
            model_json,
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )
    rates["plain Keras 1 thread, memory"] = json.loads(keras.stdout.strip().splitlines()[-1])[
        "samples_per_s"
    ]

    launch2 = dataclasses.replace(base.launch, num_workers=2, warm_start=False)
    warm2 = dataclasses.replace(launch2, warm_start=True)
    launches: dict[str, list[float]] = {"cold": [], "warm": [], "horovod": []}
    # horovod.spark.run first: its tasks take the Python workers' spare processes down.
    for _ in range(3):
        t0 = time.time()
        launches["horovod"].append(max(horovod.spark.run(init_probe, num_proc=2, verbose=0)) - t0)
    for _ in range(3):
        t0 = time.time()
        launches["cold"].append(
            max(BarrierLauncher(spark, config=launch2).run_all(init_probe)) - t0
        )
    BarrierLauncher(spark, config=warm2).run_all(init_probe)  # leaves a spare per worker
    for _ in range(3):
        # A new spare imports TensorFlow after each run (2 to 3 s of CPU); the next launch
        # finds it ready when it comes a few seconds later, as a retry or the next job would.
        time.sleep(5)
        t0 = time.time()
        launches["warm"].append(max(BarrierLauncher(spark, config=warm2).run_all(init_probe)) - t0)
    cold, warm, theirs = (statistics.median(launches[k]) for k in ("cold", "warm", "horovod"))
    seconds = BarrierLauncher(spark, config=launch2).run(allreduce_probe, 64, 5)
    spark.stop()
    busbw = 2 * (2 - 1) / 2 * 64 * _MB / seconds
    tcp = loopback_tcp_bandwidth(64, 5)

    one, two = rates["hvd 1 rank x 1 thread, parquet"], rates["hvd 2 ranks x 1 thread, parquet"]
    lines = [
        f"train benchmark: {rows} rows, {ds.feature_dim} features, MLP {base.train.model.hidden}x"
        f"{base.train.model.depth}, batch {batch} per rank, {epochs} epochs (median of epochs 2..)",
        format_table(["run", "samples/s"], [[k, v] for k, v in rates.items()]),
        f"Horovod 1 rank / plain Keras (both from memory):     {rates['hvd 1 rank x 1 thread, memory'] / rates['plain Keras 1 thread, memory']:.3f}  (target >= 0.95)",
        f"Horovod 1 rank from Parquet / plain Keras:            {one / rates['plain Keras 1 thread, memory']:.3f}",
        f"2 ranks x 1 thread / 2 x (1 rank x 1 thread):         {two / (2 * one):.3f}  (target >= 0.85)",
        f"2 ranks x 1 thread / 1 rank x 2 threads:              {two / rates['hvd 1 rank x 2 threads, parquet']:.3f}",
        f"Parquet-fed / memory-fed (1 rank):                    {one / rates['hvd 1 rank x 1 thread, memory']:.3f}  (target >= 0.9)",
        f"launch to all ranks initialised: horovod.spark.run {theirs:.2f} s; sparkdl cold "
        f"{cold:.2f} s, ratio {cold / theirs:.3f}; sparkdl launch.warm_start (spare ready) {warm:.2f} s, ratio "
        f"{warm / theirs:.3f}  (target <= 0.5)",
        f"all-reduce 64 MB on 2 ranks: {seconds * 1000:.1f} ms, bus bandwidth {busbw / 1e9:.2f} GB/s; "
        f"loopback TCP {tcp / 1e9:.2f} GB/s; ratio {busbw / tcp:.3f}  (target >= 0.5)",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sparkdl bench train``."""
    parser.add_argument("--rows", type=int, default=200_000, help="training rows (default 200000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--batch", type=int, default=256, help="batch size per rank")
    parser.add_argument("--hidden", type=int, default=64, help="MLP width (default 64)")
    parser.add_argument("--depth", type=int, default=2, help="MLP hidden layers (default 2)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder)")


def main(args: argparse.Namespace) -> str:
    """Entry point used by the CLI."""
    with scratch_dir(args.workdir, prefix="sparkdl-bench-train-") as workdir:
        return run_train_bench(
            rows=args.rows,
            epochs=args.epochs,
            batch=args.batch,
            hidden=args.hidden,
            depth=args.depth,
            workdir=workdir,
        )


if __name__ == "__main__" and sys.argv[1] == "keras":
    _keras_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
