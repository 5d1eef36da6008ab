"""scripts/slownet.sh: a private network namespace whose loopback is rate-limited (tc tbf).

A TCP stream inside is measured at each rate, and a port the host listens on is checked to be
out of reach from inside. Needs root, unshare, ip and tc: skipped with the script's reason where
one is missing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sparkdl.bench.slownet import SlowNetUnsupportedError, run_in_slow_network

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("tcp_probe.py")


def _probe(rate: str, *extra: str) -> dict[str, float]:
    try:
        done = run_in_slow_network([sys.executable, str(PROBE), *extra], rate=rate, timeout_s=120)
    except SlowNetUnsupportedError as exc:
        pytest.skip(str(exc))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_namespace_limits_a_tcp_stream_to_its_rate_and_sees_only_its_own_loopback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as host_service:
        port = host_service.getsockname()[1]
        one = _probe("1gbit", "--megabytes", "64", "--host-port", str(port))
        off = _probe("off", "--megabytes", "256")
    assert 0.80 <= one["gbit_s"] <= 1.05, one  # the token bucket's rate, within 20 %
    assert one["host_port_reachable"] is False  # the host's loopback is not this one
    # unthrottled, the same stream runs several times faster (loopback, limited by the CPU)
    assert off["gbit_s"] > 2.5 * one["gbit_s"], (off, one)


def test_ten_gbit_lies_between_one_gbit_and_the_unthrottled_loopback() -> None:
    ten = _probe("10gbit", "--megabytes", "256")
    assert 2.0 < ten["gbit_s"] <= 10.5, ten


@pytest.mark.parametrize(
    ("rate", "why"),
    [("fast", "give off, or a whole number of gbit or mbit"), ("1.5gbit", "a whole number")],
)
def test_a_rate_it_cannot_set_is_refused_with_exit_2(rate: str, why: str) -> None:
    done = subprocess.run(
        ["bash", "scripts/slownet.sh", "--rate", rate, "--", "true"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and why in done.stderr, done.stderr


def test_a_spark_job_runs_whole_inside_the_namespace() -> None:
    # driver, executor threads and the Python workers all talk over the namespace's loopback
    code = (
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.master('local[2]').config('spark.ui.enabled', 'false')"
        ".getOrCreate()\n"
        "print('rows', s.sparkContext.parallelize(range(1000), 4).map(lambda x: x * 2).sum())\n"
        "print('driver', s.conf.get('spark.driver.host'))\n"
    )
    try:
        done = run_in_slow_network([sys.executable, "-c", code], rate="1gbit", timeout_s=180)
    except SlowNetUnsupportedError as exc:
        pytest.skip(str(exc))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "rows 999000" in lines, done.stdout
    assert {"driver 127.0.0.1", "driver localhost"} & set(lines), done.stdout  # its loopback
