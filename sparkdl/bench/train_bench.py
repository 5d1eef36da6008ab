"""``sparkdl bench train``: Horovod training throughput, scaling, input and launch overhead.

All measurements run in one invocation on the same prepared data and model:

- Horovod with 1 rank against plain Keras (a separate process, data in memory);
- per-core efficiency: 2 ranks x 1 thread against 2 x (1 rank x 1 thread), and against
  1 rank x 2 threads;
- Parquet-fed (petastorm) against memory-fed training;
- launch overhead (submission until every rank has initialised Horovod) against
  ``horovod.spark.run`` for the same function;
- Horovod all-reduce bus bandwidth at 64 MB against TCP bandwidth over loopback between the
  same two rank processes (one stream, timed until the receiver holds every byte; and, for
  reading the number, each direction while both send at once, as a 2-rank ring does).

Throughput is the median of per-epoch samples/s over the epochs after the first, an epoch's time
being the time since the previous epoch ended (what runs between epochs counts: checkpoints, the
next ``fit`` call, opening readers). Each training configuration and plain Keras run once per
round (``--rounds``), and every ratio is the median over rounds of the two runs of the same round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sparkdl.bench.measure import format_table, scratch_dir
from sparkdl.config import SparkdlConfig, load_config

logger = logging.getLogger(__name__)

_MB = 1 << 20


def _rate(history: list[dict[str, float]], samples_per_epoch: int) -> float:
    """Samples/s from the median time between consecutive epoch ends (epochs 2 on)."""
    secs = [h["wall_seconds"] for h in history[1:]] or [history[0]["wall_seconds"]]
    return samples_per_epoch / statistics.median(secs)


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
        """Time between consecutive epoch ends, as the trainer's ``wall_seconds``."""

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 0:
                self.t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            now = time.perf_counter()
            seconds.append(now - self.t)
            self.t = now

    model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[Timer()], verbose=0)
    print(json.dumps({"samples_per_s": steps * batch / statistics.median(seconds[1:])}))


def _keras_rate(split_path: str, *, epochs: int, batch: int, model_json: str) -> float:
    """Plain Keras in a fresh process (1 thread, data in memory): its samples/s."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkdl.bench.train_bench",
            "keras",
            split_path,
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
    return float(json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"])


def _paired(rounds: list[dict[str, float]], top: str, bottom: str, factor: float = 1.0) -> str:
    """Median over rounds of ``top / (factor * bottom)``, with each round's value."""
    values = [r[top] / (factor * r[bottom]) for r in rounds]
    each = ", ".join(f"{v:.3f}" for v in values)
    return f"{statistics.median(values):.3f}  ({each})"


def run_train_bench(
    *,
    rows: int,
    epochs: int,
    batch: int,
    hidden: int,
    depth: int,
    rounds: int,
    workdir: Path,
) -> str:
    """Run every measurement and return the report (see the module docstring)."""
    import horovod.spark

    from sparkdl.bench.probes import allreduce_probe, init_probe
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
    runs = {
        "hvd 1 rank x 1 thread, parquet": (1, 1, "parquet"),
        "hvd 1 rank x 1 thread, memory": (1, 1, "memory"),
        "hvd 2 ranks x 1 thread, parquet": (2, 1, "parquet"),
        "hvd 1 rank x 2 threads, parquet": (1, 2, "parquet"),
    }
    keras = "plain Keras 1 thread, memory"
    model_json = json.dumps(to_dict(base.train.model))
    # Every configuration runs once per round and ratios pair runs of the same round: the
    # machine's load drifts over minutes, and a round keeps the compared runs close in time.
    measured: list[dict[str, float]] = []
    for r in range(rounds):
        rates: dict[str, float] = {}
        for name, (workers, threads, source) in runs.items():
            launch = dataclasses.replace(
                base.launch, num_workers=workers, threads_per_worker=threads
            )
            train = dataclasses.replace(
                base.train,
                dataset=str(workdir / "prepared"),
                output=str(workdir / f"run-{r}-{len(rates)}"),
                epochs=epochs,
                batch_size=batch,
                data_source=source,
                tensorboard=False,
                warmup_epochs=0.0,
            )
            result = run_training(spark, train=train, launch=launch)
            per_epoch = split_steps(ds, "train", workers=workers, batch=batch) * batch * workers
            rates[name] = _rate(result.history, per_epoch)
            logger.info("round %d, %s: %.0f samples/s", r + 1, name, rates[name])
        rates[keras] = _keras_rate(
            ds.split_path("train"), epochs=epochs, batch=batch, model_json=model_json
        )
        measured.append(rates)

    launch2 = dataclasses.replace(base.launch, num_workers=2, warm_start=False)
    warm2 = dataclasses.replace(launch2, warm_start=True)
    # Before the launch timings: a warm-start launch leaves spare processes importing
    # TensorFlow (seconds of CPU on both cores), which must not overlap the probe.
    probe = BarrierLauncher(spark, config=launch2).run(allreduce_probe, 64, 9)
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
    spark.stop()
    busbw = 2 * (2 - 1) / 2 * 64 * _MB / probe["seconds"]

    table = [
        [name, statistics.median(v), min(v), max(v)]
        for name in [*runs, keras]
        for v in [[m[name] for m in measured]]
    ]
    one, mem = "hvd 1 rank x 1 thread, parquet", "hvd 1 rank x 1 thread, memory"
    two, wide = "hvd 2 ranks x 1 thread, parquet", "hvd 1 rank x 2 threads, parquet"
    lines = [
        f"train benchmark: {rows} rows, {ds.feature_dim} features, MLP {base.train.model.hidden}x"
        f"{base.train.model.depth}, batch {batch} per rank, {epochs} epochs (median of epochs "
        f"2..), {rounds} rounds; ratios: median over rounds of runs paired within a round",
        format_table(["run", "samples/s median", "min", "max"], table),
        f"Horovod 1 rank / plain Keras (both from memory):  {_paired(measured, mem, keras)}  (target >= 0.95)",
        f"Horovod 1 rank from Parquet / plain Keras:         {_paired(measured, one, keras)}",
        f"2 ranks x 1 thread / 2 x (1 rank x 1 thread):      {_paired(measured, two, one, 2.0)}  (target >= 0.85)",
        f"2 ranks x 1 thread / 1 rank x 2 threads:           {_paired(measured, two, wide)}",
        f"Parquet-fed / memory-fed (1 rank):                 {_paired(measured, one, mem)}  (target >= 0.9)",
        f"launch to all ranks initialised: horovod.spark.run {theirs:.2f} s; sparkdl cold "
        f"{cold:.2f} s, ratio {cold / theirs:.3f}; sparkdl launch.warm_start (spare ready) {warm:.2f} s, ratio "
        f"{warm / theirs:.3f}  (target <= 0.5)",
        f"all-reduce 64 MB on 2 ranks: {probe['seconds'] * 1000:.1f} ms, bus bandwidth "
        f"{busbw / 1e9:.2f} GB/s; TCP over loopback between the same two processes, one stream "
        f"{probe['one_stream'] / 1e9:.2f} GB/s: ratio {busbw / probe['one_stream']:.3f}  "
        f"(target >= 0.5); both directions at once {probe['duplex'] / 1e9:.2f} GB/s each way: "
        f"ratio {busbw / probe['duplex']:.3f}",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sparkdl bench train``."""
    parser.add_argument("--rows", type=int, default=200_000, help="training rows (default 200000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--batch", type=int, default=256, help="batch size per rank")
    parser.add_argument("--hidden", type=int, default=64, help="MLP width (default 64)")
    parser.add_argument("--depth", type=int, default=2, help="MLP hidden layers (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each configuration runs (default 3)"
    )
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
            rounds=args.rounds,
            workdir=workdir,
        )


if __name__ == "__main__" and sys.argv[1] == "keras":
    _keras_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
