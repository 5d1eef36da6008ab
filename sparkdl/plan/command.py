"""The ``sparkdl plan`` command line: its arguments, and the run that prints the plan.

Examples
--------
>>> parse_rate("10gbit"), parse_rate("100mbit"), parse_latency("50us"), parse_latency("2ms")
(1250000000.0, 12500000.0, 5e-05, 0.002)
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from typing import Any

from sparkdl.errors import BadInputError
from sparkdl.plan.planner import MODE_KINDS

logger = logging.getLogger(__name__)

_RATE = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def parse_rate(text: str) -> float:
    """A link rate such as ``10gbit`` or ``100mbit``, in bytes/s.

    Raises
    ------
    BadInputError
        For a rate of 0 or below, or one without a unit (naming ``--bandwidth``).
    """
    found = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-zA-Z]+)\s*", text or "")
    if not found or found.group(2).lower() not in _RATE:
        raise BadInputError(
            f"--bandwidth {text!r}: give a rate with a unit, e.g. 10gbit, 1gbit or 100mbit"
        )
    rate = float(found.group(1)) * _RATE[found.group(2).lower()] / 8
    if rate <= 0:
        raise BadInputError(f"--bandwidth {text!r}: a link rate must be above 0, e.g. 1gbit")
    return rate


def parse_latency(text: str) -> float:
    """A latency such as ``50us`` or ``1ms`` (``0`` alone is allowed), in seconds."""
    if text.strip() == "0":
        return 0.0
    found = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([a-z]+)\s*", text or "")
    if not found or found.group(2) not in _PER_SECOND or float(found.group(1)) < 0:
        raise BadInputError(f"--latency {text!r}: give a time with a unit, e.g. 50us or 1ms")
    return float(found.group(1)) / _PER_SECOND[found.group(2)]


def parse_workers(text: str) -> list[int]:
    """``1,2,4,8`` as a list; every count must be 1 or more.

    Examples
    --------
    >>> parse_workers("1,2,8")
    [1, 2, 8]
    """
    try:
        counts = [int(w) for w in text.split(",") if w.strip()]
    except ValueError as exc:
        raise BadInputError(f"--workers {text!r}: give whole numbers, e.g. 1,2,4,8") from exc
    if not counts or min(counts) < 1:
        raise BadInputError(f"--workers {text!r}: every worker count must be 1 or more")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``sparkdl plan``'s own options (besides ``--config`` and ``--set``)."""
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts to plan (1,2,4,8)")
    parser.add_argument(
        "--cores-per-worker",
        type=int,
        default=None,
        help="threads per rank (launch.threads_per_worker)",
    )
    parser.add_argument(
        "--bandwidth", default=None, help="link rate, e.g. 10gbit (default: measured)"
    )
    parser.add_argument(
        "--latency", default=None, help="link latency, e.g. 50us (default: measured)"
    )
    parser.add_argument(
        "--ranks-per-host",
        type=int,
        default=1,
        help="ranks sharing one machine (their step is calibrated as that many ranks side by side "
        "in a barrier stage)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (train.epochs)")
    parser.add_argument(
        "--rows", type=int, default=None, help="training rows (default: the train.dataset's)"
    )
    parser.add_argument("--features", type=int, default=None, help="input features (with --rows)")
    parser.add_argument(
        "--classes", type=int, default=2, help="classes, 1 for regression (with --rows)"
    )
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="do not probe the link (use --bandwidth/--latency or the cache)",
    )
    parser.add_argument(
        "--network", default="host", help="label of the measured network in the cache"
    )
    parser.add_argument(
        "--modes",
        default=",".join(MODE_KINDS),
        help=f"training modes to plan, of {','.join(MODE_KINDS)} (all)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="pick only plans that finish within this many minutes",
    )
    parser.add_argument(
        "--max-core-hours",
        type=float,
        default=None,
        help="pick only plans that cost at most this many core-hours",
    )
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")


def run(args: argparse.Namespace) -> str:
    """Calibrate what is not cached, predict, and return the plan as text (or JSON)."""
    import dataclasses

    from sparkdl.config.args import config_from_args
    from sparkdl.plan.model import Job
    from sparkdl.plan.planner import (
        Calibration,
        candidate_modes,
        compute_calibration,
        link_calibration,
        plan,
        target_link,
    )

    cfg = config_from_args(args)
    workers = parse_workers(args.workers)
    modes = candidate_modes(cfg.train, kinds=tuple(m.strip() for m in args.modes.split(",")))
    for flag, bound in (
        ("--max-minutes", args.max_minutes),
        ("--max-core-hours", args.max_core_hours),
    ):
        if bound is not None and not bound > 0:
            raise BadInputError(f"{flag} {bound:g}: give a bound above 0")
    bandwidth = parse_rate(args.bandwidth) if args.bandwidth else None
    latency = parse_latency(args.latency) if args.latency else None
    threads = args.cores_per_worker or cfg.launch.threads_per_worker or 1
    if threads < 1:
        raise BadInputError(f"--cores-per-worker {threads}: give 1 or more")
    if args.ranks_per_host < 1:
        raise BadInputError(f"--ranks-per-host {args.ranks_per_host}: give 1 or more")
    spark = None
    # a session reads the dataset, probes the link and runs ranks sharing a host side by side
    if args.rows is None or not args.no_probe or args.ranks_per_host > 1:
        from sparkdl.session import build_session, stop_session

        spark = build_session(cfg.spark, launch=cfg.launch)
    try:
        data = _data(spark, cfg, args)
        got = compute_calibration(
            cfg.train,
            input_dim=data["features"],
            num_classes=data["classes"],
            threads=threads,
            ranks_per_host=args.ranks_per_host,
            launch_env=dict(cfg.launch.env),
            spark=spark,
        )
        links = link_calibration(
            spark, network=args.network, measure=not args.no_probe and spark is not None
        )
    finally:
        if spark is not None:
            stop_session(spark)
    if got is None:  # compute_calibration measures what is missing: never None here
        raise RuntimeError("the compute calibration was neither cached nor measured")
    compute, rates, shapes, device = got
    job = Job(
        train_rows=data["rows"],
        validation_rows=data["validation_rows"],
        epochs=args.epochs or cfg.train.epochs,
        workers=workers[0],
        cores_per_worker=threads,
        link=target_link(links, bandwidth=bandwidth, latency=latency),
        input_rows_per_s=data["input_rows_per_s"] if cfg.train.data_source == "parquet" else None,
    )
    report = plan(
        Calibration(compute=compute, rates=rates, shapes=shapes, device=device, link=links),
        modes=modes,
        workers=workers,
        job=job,
        max_total_s=60 * args.max_minutes if args.max_minutes is not None else None,
        max_core_hours=args.max_core_hours,
    )
    if args.json:
        return json.dumps([dataclasses.asdict(p) for p in report.predictions], indent=1)
    return report.format()


def _data(spark: Any, cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Rows, features and classes: given, or read from ``train.dataset`` with its reader rate."""
    if args.rows is not None:
        if args.rows < 1 or not args.features:
            raise BadInputError("--rows needs a value of 1 or more and --features (input width)")
        return {
            "rows": args.rows,
            "validation_rows": 0,
            "features": args.features,
            "classes": args.classes,
            "input_rows_per_s": None,
        }
    from sparkdl.data.dataset import open_dataset
    from sparkdl.plan import cache
    from sparkdl.plan.calibrate import measure_input
    from sparkdl.train.data import petastorm_url

    ds = open_dataset(spark, cfg.train.dataset)
    rows = ds.rows("train")
    key = {"dataset": ds.path, "version": ds.manifest.version, "readers": cfg.train.reader_workers}
    found = cache.load("input", key)
    if found is None:
        rate = measure_input(
            petastorm_url(ds.split_path("train")),
            rows=rows,
            row_groups=len(ds.split("train").group_rows),
            reader_workers=cfg.train.reader_workers,
        )
        cache.save("input", key, {"rows_per_s": rate})
    else:
        rate = found["rows_per_s"]
    return {
        "rows": rows,
        "validation_rows": ds.rows("validation") if "validation" in ds.manifest.splits else 0,
        "features": ds.feature_dim,
        "classes": ds.num_classes,
        "input_rows_per_s": rate,
    }
