"""``sparkdl.run`` / ``sparkdl.Distributor``: a user's own function on Horovod ranks.

The first test runs a notebook-style script (its own SparkSession, a Keras function written as
Horovod's documentation writes one) in a fresh interpreter; the others use the suite's session.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import sparkdl
from sparkdl.errors import BadInputError, ClusterMisfitError
from sparkdl.launch.barrier import LaunchError
from tests.integration.user_scripts import run_user_script

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("notebook_train.py")


def test_a_notebooks_keras_function_trains_on_two_ranks_through_sparkdl_run(tmp_path) -> None:
    out = tmp_path / "out.json"
    done = run_user_script(SCRIPT, str(out), cwd=tmp_path)
    got = json.loads(out.read_text())
    first = got["result"]
    # rank 0's result, of a 2-rank Horovod job
    assert (first["rank"], first["size"]) == (0, 2)
    # the broadcast and DistributedOptimizer keep the ranks' weights identical
    assert len(first["digests"]) == 2 and len(set(first["digests"])) == 1
    assert len(first["accuracy"]) == 4 and first["accuracy"][-1] >= 0.9, first["accuracy"]
    # both ranks' lines reached the driver while the stage ran: the default sink printed them
    for rank in (0, 1):
        assert f"[rank {rank}] rank {rank} of 2 finished, weights" in done.stderr, done.stderr[
            -3000:
        ]
    assert "[rank 0] Epoch 4/4" in done.stderr  # Keras's own progress lines, from rank 0
    # Distributor.run passes keyword arguments on, and a callable sink gets (rank, line)
    assert len(got["second"]["accuracy"]) == 1
    lines = [tuple(x) for x in got["lines"]]
    for rank in (0, 1):
        assert any(r == rank and f"rank {rank} of 2 finished" in s for r, s in lines), lines[-20:]
    assert "[rank 0] Epoch 1/1" not in done.stderr  # that run printed nothing itself


def _shout_and_fail(word: str) -> None:
    import horovod.tensorflow as hvd

    hvd.init()
    print(f"rank {hvd.rank()} says {word}", flush=True)
    if hvd.rank() == 1:
        raise ValueError(f"rank 1 cannot take {word!r}")


def test_a_failing_ranks_last_lines_reach_the_driver_and_the_error_names_it(spark) -> None:
    lines: list[tuple[int, str]] = []
    runner = sparkdl.Distributor(
        num_workers=2,
        spark=spark,
        stream_output=lambda r, s: lines.append((r, s)),
        warm_start=False,
    )
    with pytest.raises(LaunchError, match="rank 1 cannot take 'fish'"):
        runner.run(_shout_and_fail, "fish")
    assert (1, "rank 1 says fish") in lines, lines
    assert any(r == 1 and "ValueError: rank 1 cannot take 'fish'" in s for r, s in lines), lines


def _rank_and_size(offset: int) -> tuple[int, int]:
    import horovod.tensorflow as hvd

    hvd.init()
    print(f"rank {hvd.rank()} counts from {offset}", flush=True)
    return hvd.rank() + offset, hvd.size()


def test_the_default_sink_prints_rank_lines_on_the_driver_and_false_turns_it_off(
    spark, capfd: pytest.CaptureFixture[str]
) -> None:
    assert sparkdl.run(_rank_and_size, 10, num_workers=1, spark=spark) == (10, 1)
    assert "[rank 0] rank 0 counts from 10" in capfd.readouterr().err
    assert sparkdl.run(_rank_and_size, 20, num_workers=1, spark=spark, stream_output=False) == (
        20,
        1,
    )
    assert "counts from 20" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"num_workers": 0}, BadInputError, "num_workers=0: give a whole number of ranks, 1 or"),
        ({"num_workers": 2, "stall_timout_s": 30}, BadInputError, "did you mean stall_timeout_s?"),
        ({"num_workers": 2, "start_timeout_s": 0}, BadInputError, "allowed: >= 1.0"),
        ({"num_workers": 2, "stream_output": "yes"}, BadInputError, "True, False or a callable"),
        ({"num_workers": 3}, ClusterMisfitError, "master local[2] runs at most 2 tasks at once"),
    ],
)
def test_bad_options_are_refused_before_any_rank_starts(spark, kwargs, error, says) -> None:
    with pytest.raises(error, match=re.escape(says)):
        sparkdl.run(_rank_and_size, 0, spark=spark, **kwargs)


def test_a_non_function_is_refused(spark) -> None:
    with pytest.raises(BadInputError, match="the first argument must be a function"):
        sparkdl.Distributor(num_workers=1, spark=spark).run("train.py")
