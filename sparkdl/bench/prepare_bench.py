"""``sparkdl bench prepare``: prepare throughput against pyarrow, and driver memory at 1x/10x.

Both scales run in one invocation: raw CSV is generated on the executors, each prepare runs in a
fresh child process (so its driver's peak memory is its own), and ``pyarrow.parquet.write_table``
on one thread writes the same rows as the reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import yaml

from sparkdl.bench.measure import format_table, median, run_measured, scratch_dir
from sparkdl.config import SparkdlConfig, load_config, to_dict

logger = logging.getLogger(__name__)


def _child(config_path: str) -> None:
    """Run one prepare (forced) and print its timing as JSON; the parent samples memory."""
    from sparkdl.data.prepare import run_prepare
    from sparkdl.session import build_session, stop_session

    cfg = load_config(SparkdlConfig, files=[config_path])
    spark = build_session(cfg.spark)
    start = time.perf_counter()
    result = run_prepare(spark, cfg=cfg.prepare, force=True)
    seconds = time.perf_counter() - start
    stop_session(spark)
    print(json.dumps({"seconds": seconds, "rows_in": result.rows_in, "splits": result.split_rows}))


def _pyarrow_write(raw_dir: Path, out: Path, repeats: int) -> tuple[float, int, float]:
    """Median seconds to write the raw rows with pyarrow on one thread, rows, and Arrow MB."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    files = sorted(p for p in raw_dir.rglob("*.csv"))
    table = pa.concat_tables(pacsv.read_csv(f) for f in files)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        pq.write_table(table, out / f"ref-{i}.parquet", compression="snappy")
        times.append(time.perf_counter() - start)
    return median(times), table.num_rows, table.nbytes / 1e6


def run_prepare_bench(*, base_rows: int, repeats: int, workdir: Path, cores: int) -> str:
    """Run the benchmark and return the report text.

    Parameters
    ----------
    base_rows : int
        Rows at scale 1x (10x is ten times that).
    repeats : int
        Prepare runs per scale (the median is reported) and pyarrow writes (median).
    workdir : Path
        Scratch folder for raw data, outputs and configs.
    cores : int
        ``local[cores]`` for the prepare runs.

    Examples
    --------
    >>> print(run_prepare_bench(base_rows=20_000, repeats=1, workdir=Path("/tmp/b"), cores=2))  # doctest: +SKIP
    """
    from sparkdl.data.generate import write_generated
    from sparkdl.session import build_session, stop_session

    base = load_config(
        SparkdlConfig, files=[Path(__file__).resolve().parents[2] / "conf" / "local.yaml"]
    )
    spark = build_session(dataclasses.replace(base.spark, cores=cores, log_level="ERROR"))
    rows_out = []
    per_core = {}
    py_peak = {}
    jvm_peak = {}
    for scale in (1, 10):
        rows = base_rows * scale
        raw = workdir / f"raw-{scale}x"
        gen = dataclasses.replace(
            base.generate, rows=rows, output=str(raw), format="csv", overwrite=True
        )
        write_generated(spark, cfg=gen)
        raw_mb = sum(p.stat().st_size for p in raw.rglob("*.csv")) / 1e6
        cfg = to_dict(base)
        cfg["spark"]["cores"] = cores
        cfg["prepare"]["input"]["path"] = str(raw)
        cfg["prepare"]["output"] = str(workdir / f"prepared-{scale}x")
        conf_path = workdir / f"bench-{scale}x.yaml"
        conf_path.write_text(yaml.safe_dump(cfg))
        runs = [
            run_measured(["-m", "sparkdl.bench.prepare_bench", str(conf_path)], timeout_s=3600)
            for _ in range(repeats)
        ]
        secs = median([r.result["seconds"] for r in runs])
        py_peak[scale] = median([r.peak_python_mb for r in runs])
        jvm_peak[scale] = median([r.peak_jvm_mb for r in runs])
        per_core[scale] = rows / secs / cores
        rows_out.append(
            [
                f"{scale}x",
                rows,
                raw_mb,
                secs,
                per_core[scale],
                raw_mb / secs / cores,
                py_peak[scale],
                jvm_peak[scale],
            ]
        )
    # The floor for any Spark job on this input: CSV straight to Parquet, nothing else.
    plain = []
    for i in range(max(2, repeats)):
        t0 = time.perf_counter()
        spark.read.csv(str(workdir / "raw-10x"), header=True).write.mode("overwrite").parquet(
            str(workdir / f"plain-{i}")
        )
        plain.append(time.perf_counter() - t0)
    plain_per_core = base_rows * 10 / median(plain[1:]) / cores
    stop_session(spark)
    ref_s, ref_rows, ref_mb = _pyarrow_write(workdir / "raw-1x", workdir, max(3, repeats))
    ref_rate = ref_rows / ref_s
    lines = [
        f"prepare benchmark: local[{cores}], raw CSV from `sparkdl generate`, medians of {repeats} run(s)",
        format_table(
            [
                "scale",
                "rows",
                "raw MB",
                "prepare s",
                "rows/s/core",
                "MB/s/core",
                "driver py MB",
                "driver JVM MB",
            ],
            rows_out,
        ),
        f"pyarrow.parquet.write_table, 1 thread, same {ref_rows} rows ({ref_mb:.1f} MB in Arrow): "
        f"{ref_s:.3f} s = {ref_rate:,.0f} rows/s",
        f"plain Spark CSV -> Parquet at 10x (no validation, no features): {plain_per_core:,.0f} "
        f"rows/s/core, {plain_per_core / ref_rate:.3f} of pyarrow; prepare is "
        f"{per_core[10] / plain_per_core:.2f} of it",
        f"ratio prepare rows/s/core / pyarrow rows/s at 1x:  {per_core[1] / ref_rate:.3f}  (target >= 0.5)",
        f"ratio prepare rows/s/core / pyarrow rows/s at 10x: {per_core[10] / ref_rate:.3f}  (target >= 0.5)",
        f"driver Python peak RSS 10x / 1x: {py_peak[10] / py_peak[1]:.2f}  (target <= 1.2)",
        f"driver JVM peak RSS 10x / 1x:    {jvm_peak[10] / jvm_peak[1]:.2f}  "
        "(local mode: this JVM also hosts the executors)",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sparkdl bench prepare``."""
    parser.add_argument("--rows", type=int, default=200_000, help="rows at 1x (default 200000)")
    parser.add_argument("--repeats", type=int, default=1, help="prepare runs per scale (median)")
    parser.add_argument(
        "--cores", type=int, default=min(2, os.cpu_count() or 1), help="local[N] cores"
    )
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder)")


def main(args: argparse.Namespace) -> str:
    """Entry point used by the CLI."""
    with scratch_dir(args.workdir, prefix="sparkdl-bench-") as workdir:
        return run_prepare_bench(
            base_rows=args.rows, repeats=args.repeats, workdir=workdir, cores=args.cores
        )


if __name__ == "__main__":
    import sys

    _child(sys.argv[1])
