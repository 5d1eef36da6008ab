"""``sparkdl bench comms``: the training modes on a slower network, side by side in one run.

Two models on generated data: the demo's MLP (tabular features) and a CNN whose dense head
holds millions of weights (``--cnn-head``; 5.3 M parameters by default), on image-shaped
features. Each model trains in every mode (:data:`MODES`) at every link rate (unthrottled, 10
and 1 Gbit/s): each rate is one child process (:mod:`sparkdl.bench.comms_runs`) that
``scripts/slownet.sh`` starts in a private network namespace whose loopback runs at that rate,
so the driver, executors and ranks all talk over it. Unthrottled, two 1-rank trainings of the
MLP run at once as well (two barrier stages, one core each): the per-core baseline.

For each mode it reports the epoch time (median, epochs 2 on), the bytes a rank handed its
collectives per step (counted by the trainer, ``metrics.json`` ``exchange``), the training time
until the validation accuracy first reaches sync's final accuracy less 0.5 points, and the
final accuracy; and it checks the targets of :func:`check_targets`. Without root the
namespace cannot be made: it says why and runs the unthrottled part in the host's network.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sparkdl.bench.comms_report import merge_repeats, report, write_json
from sparkdl.bench.comms_runs import Measured, Plan, Training
from sparkdl.bench.measure import scratch_dir
from sparkdl.bench.slownet import RATES, SlowNetUnsupportedError, run_in_slow_network
from sparkdl.errors import BadInputError

logger = logging.getLogger(__name__)

MODELS = ("mlp", "cnn")
MODE_KEYS = ("sync", "fp16", "accumulate", "local_sgd", "topk", "powersgd")


def modes(period: int) -> dict[str, tuple[str, ...]]:
    """Each mode's label and its ``train.*`` settings.

    Examples
    --------
    >>> list(modes(16))
    ['sync', 'fp16', 'accumulate k=4', 'local_sgd H=16', 'topk 1%', 'powersgd r=4']
    """
    return {
        "sync": (),
        "fp16": ("train.compression=fp16",),
        "accumulate k=4": ("train.mode=accumulate", "train.accumulate_steps=4"),
        f"local_sgd H={period}": ("train.mode=local_sgd", f"train.local_sgd_period={period}"),
        "topk 1%": ("train.compression=topk", "train.topk_density=0.01"),
        "powersgd r=4": ("train.compression=powersgd", "train.powersgd_rank=4"),
    }


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The benchmark's data and model sizes (the command's arguments)."""

    mlp_rows: int
    cnn_rows: int
    image: int  # the CNN's images are image x image, one channel
    cnn_head: tuple[int, ...]
    epochs: int
    cnn_epochs: int
    period: int
    rates: tuple[str, ...]
    models: tuple[str, ...] = MODELS
    modes: tuple[str, ...] = MODE_KEYS  # a subset of MODE_KEYS, each a mode's first word
    # the unthrottled MLP's 2 x 1 rank and local SGD runs, interleaved: medians compared
    repeats: int = 3


def _configs(work: Path, sizes: Sizes) -> dict[str, list[str]]:
    """Per model of ``sizes.models``: the overrides of conf/local.yaml its data preparation and
    training read."""
    common = [
        "spark.log_level=ERROR",
        "train.tensorboard=false",
        "train.data_source=memory",
        "launch.warm_start=true",
        "launch.start_timeout_s=120",
        # the runs are measured, not predicted: no preflight calibration stage before each new
        # model (bench plan calibrates before every training itself, as it must)
        "train.predict=false",
    ]
    pixels = sizes.image * sizes.image
    every = {
        "mlp": [
            *common,
            f"generate.rows={sizes.mlp_rows}",
            f"generate.output={work / 'mlp-raw'}",
            f"prepare.input.path={work / 'mlp-raw'}",
            f"prepare.output={work / 'mlp'}",
            f"train.dataset={work / 'mlp'}",
            f"train.epochs={sizes.epochs}",
        ],
        "cnn": [
            *common,
            f"generate.rows={sizes.cnn_rows}",
            # 4 Gaussian classes whose centres lie 10 standard deviations apart across the
            # pixels: 0.95 after one epoch, about 0.98 after four (12000 rows, 5.3 M weights)
            "generate.kind=blobs",
            "generate.clusters=4",
            f"generate.center_box={_box(pixels):.4f}",
            "generate.cluster_std=1.0",
            f"generate.numeric_features={pixels}",
            f"generate.output={work / 'cnn-raw'}",
            f"prepare.input.path={work / 'cnn-raw'}",
            f"prepare.output={work / 'cnn'}",
            f"prepare.columns.numeric=[{','.join(f'x{i}' for i in range(pixels))}]",
            "prepare.columns.categorical=[]",
            "prepare.columns.label_values=[0,1,2,3]",
            f"train.dataset={work / 'cnn'}",
            f"train.epochs={sizes.cnn_epochs}",
            "train.batch_size=64",
            "train.model.kind=cnn",
            f"train.model.image_shape=[{sizes.image},{sizes.image}]",
            "train.model.filters=16",
            "train.model.depth=2",
            f"train.model.head=[{','.join(map(str, sizes.cnn_head))}]",
        ],
    }
    return {m: every[m] for m in sizes.models}


def _box(pixels: int) -> float:
    """The centre box whose expected distance between two centres is 10 (std 1).

    Two centres drawn uniformly in [-b, b]^d differ by 2 b^2 / 3 per dimension (variance), so
    their distance is about b sqrt(2 d / 3).

    Examples
    --------
    >>> round(_box(256) * (2 * 256 / 3) ** 0.5, 6)
    10.0
    """
    return 10.0 / math.sqrt(2 * pixels / 3)


def _prepare(configs: dict[str, list[str]]) -> None:
    """Generate and prepare both datasets (this process's Spark, stopped before the runs)."""
    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.data.generate import write_generated
    from sparkdl.data.prepare import run_prepare
    from sparkdl.session import build_session

    repo = Path(__file__).resolve().parents[2]
    cfgs = [
        load_config(SparkdlConfig, files=[repo / "conf" / "local.yaml"], overrides=c)
        for c in configs.values()
    ]
    spark = build_session(cfgs[0].spark, launch=cfgs[0].launch)
    try:
        for cfg in cfgs:
            write_generated(spark, cfg=cfg.generate)
            run_prepare(spark, cfg=cfg.prepare)
    finally:
        spark.stop()


def _plan(rate: str, work: Path, sizes: Sizes) -> Plan:
    """The trainings at ``rate``; unthrottled, the per-core pair and local SGD come again at
    the end (``sizes.repeats`` of each in all), so their medians span the child's run."""
    per_core = rate == "off" and "mlp" in sizes.models
    pair = Training(model="mlp", name="2 x 1 rank", workers=1, pair=True)
    trainings = [pair] if per_core else []
    trainings += [
        Training(model=model, name=name, overrides=sets)
        for model in sizes.models
        for name, sets in modes(sizes.period).items()
        if name.split()[0] in sizes.modes
    ]
    local = [t for t in trainings if t.model == "mlp" and t.name.startswith("local_sgd")]
    if per_core:
        trainings += [pair, *local] * (sizes.repeats - 1)
    configs = _configs(work, sizes)
    return Plan(rate=rate, workdir=str(work / "runs"), configs=configs, trainings=trainings)


@dataclasses.dataclass(frozen=True)
class ChildRuns:
    """What one rate's child printed: its trainings, and its link probe when asked for one
    (``{"allreduce": Link, "allgather": Link}``)."""

    runs: list[Measured]
    links: dict[str, Any] = dataclasses.field(default_factory=dict)


def _run_child(plan: Plan, *, namespace: bool, timeout_s: float) -> ChildRuns:
    """Run ``plan`` in a child process (inside the namespace when ``namespace``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(plan.to_json())
    cmd = [sys.executable, "-m", "sparkdl.bench.comms_runs", f.name]
    if namespace:
        done = run_in_slow_network(cmd, rate=plan.rate, timeout_s=timeout_s)
    else:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"the runs at rate {plan.rate} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    from sparkdl.plan.model import Link

    out = ChildRuns(runs=[])
    for line in done.stdout.splitlines():
        if line.startswith('{"model"'):
            out.runs.append(Measured.from_json(line))
        elif line.startswith('{"link"'):
            out.links.update({k: Link(**v) for k, v in json.loads(line)["link"].items()})
    return out


def run_rate(plan: Plan, *, timeout_s: float, notes: list[str]) -> ChildRuns | None:
    """Run one rate's child in its namespace. Where the namespace cannot be made, the
    unthrottled rate runs in the host's network and a throttled one is skipped (None); either
    way ``notes`` says so."""
    try:
        return _run_child(plan, namespace=True, timeout_s=timeout_s)
    except SlowNetUnsupportedError as exc:
        if plan.rate != "off":
            notes.append(f"rate {plan.rate} skipped: {exc}")
            return None
        notes.append(f"unthrottled runs in the host's network (no private namespace: {exc})")
        return _run_child(plan, namespace=False, timeout_s=timeout_s)


def run_comms_bench(
    *, sizes: Sizes, workdir: Path, timeout_s: float
) -> tuple[list[Measured], list[str]]:
    """Prepare the data and run every rate's child: the runs, and notes for the report."""
    configs = _configs(workdir, sizes)
    _prepare(configs)
    notes = [
        f"comms benchmark: 2 ranks x 1 thread; mlp {sizes.mlp_rows} rows, {sizes.epochs} "
        f"epochs; cnn {sizes.image}x{sizes.image} images, head {list(sizes.cnn_head)}, "
        f"{sizes.cnn_rows} rows, {sizes.cnn_epochs} epochs; bytes: what a rank handed its "
        "collectives per step (a 2-rank ring puts as many on the wire); unthrottled, the "
        f"mlp's 2 x 1 rank and local SGD runs are the medians of {sizes.repeats}, interleaved"
    ]
    runs: list[Measured] = []
    for rate in sizes.rates:
        done = run_rate(_plan(rate, workdir, sizes), timeout_s=timeout_s, notes=notes)
        if done is not None:
            runs += done.runs
    return merge_repeats(runs), notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sparkdl bench comms``."""
    parser.add_argument("--mlp-rows", type=int, default=1_000_000, help="MLP rows (1000000)")
    parser.add_argument("--cnn-rows", type=int, default=12_000, help="CNN rows (12000)")
    parser.add_argument("--image", type=int, default=16, help="CNN image side (16)")
    parser.add_argument(
        "--cnn-head",
        default="2048,2048",
        help="CNN dense head widths (2048,2048: 5.3 M parameters)",
    )
    parser.add_argument("--epochs", type=int, default=4, help="MLP epochs (4)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="unthrottled MLP 2 x 1 rank and local SGD runs, interleaved; medians (3)",
    )
    parser.add_argument("--cnn-epochs", type=int, default=5, help="CNN epochs (5)")
    parser.add_argument("--period", type=int, default=16, help="local SGD period H (16)")
    parser.add_argument(
        "--rates", default=",".join(RATES), help=f"link rates, comma-separated ({','.join(RATES)})"
    )
    parser.add_argument("--models", default="mlp,cnn", help="models, comma-separated (mlp,cnn)")
    parser.add_argument(
        "--modes",
        default=",".join(MODE_KEYS),
        help=f"training modes, comma-separated ({','.join(MODE_KEYS)})",
    )
    parser.add_argument("--timeout", type=float, default=5400, help="seconds per rate (5400)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--json", default=None, help="also write the runs and targets here")


def _choose(option: str, given: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The comma-separated names of ``given``, each one of ``allowed``.

    Examples
    --------
    >>> _choose("--models", "cnn, mlp", MODELS)
    ('cnn', 'mlp')
    """
    names = tuple(n.strip() for n in given.split(",") if n.strip())
    wrong = [n for n in names if n not in allowed]
    if not names or wrong:
        raise BadInputError(
            f"sparkdl bench comms {option} {given!r}: {', '.join(wrong) or 'nothing'} is not "
            f"one of {', '.join(allowed)}; give them comma-separated (default "
            f"{','.join(allowed)})"
        )
    return names


def main(args: argparse.Namespace) -> str:
    """Entry point used by the CLI."""
    sizes = Sizes(
        mlp_rows=args.mlp_rows,
        cnn_rows=args.cnn_rows,
        image=args.image,
        cnn_head=tuple(int(w) for w in args.cnn_head.split(",")),
        epochs=args.epochs,
        cnn_epochs=args.cnn_epochs,
        period=args.period,
        rates=tuple(r.strip() for r in args.rates.split(",") if r.strip()),
        repeats=args.repeats,
        models=_choose("--models", args.models, MODELS),
        modes=_choose("--modes", args.modes, MODE_KEYS),
    )
    if sizes.repeats < 1:
        raise BadInputError(
            f"sparkdl bench comms --repeats {sizes.repeats}: give 1 or more (default 3)"
        )
    for rate in sizes.rates:
        if not re.fullmatch(r"off|[1-9][0-9]*(gbit|mbit)", rate):
            raise BadInputError(
                f"sparkdl bench comms --rates: {rate!r} is no link rate; give off or a whole "
                f"number of gbit or mbit, comma-separated (default {','.join(RATES)})"
            )
    with scratch_dir(args.workdir, prefix="sparkdl-bench-comms-") as workdir:
        runs, notes = run_comms_bench(sizes=sizes, workdir=workdir, timeout_s=args.timeout)
    if args.json:
        write_json(Path(args.json), runs=runs, notes=notes, period=sizes.period)
    return report(runs, period=sizes.period, notes=notes)
