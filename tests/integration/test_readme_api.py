"""README's Python API example, run as README shows it: a script with its own SparkSession."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.user_scripts import run_user_script

pytestmark = [pytest.mark.integration, pytest.mark.long]

SECTION = "## Your own function on Horovod ranks: `sparkdl.run`"


ESTIMATOR = "## Spark ML: `sparkdl.ml.KerasEstimator`"


def readme_example(repo: Path, heading: str = SECTION) -> str:
    """The first ``python`` block of README's section under ``heading``."""
    text = (repo / "README.md").read_text()
    section = text[text.index(heading) :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_trains_on_two_ranks_and_prints_rank_0s_accuracy(repo, tmp_path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(repo))
    done = run_user_script(script, cwd=tmp_path)
    found = re.search(r"rank 0's training accuracy: ([0-9.]+)", done.stdout)
    assert found and float(found.group(1)) >= 0.9, done.stdout


def test_the_readme_estimator_example_fits_a_pipeline_and_saves_it(repo, tmp_path) -> None:
    script = tmp_path / "estimator.py"
    script.write_text(readme_example(repo, ESTIMATOR))
    done = run_user_script(script, cwd=tmp_path)
    found = re.search(r"accuracy: ([0-9.]+)", done.stdout)
    assert found and float(found.group(1)) >= 0.9, done.stdout
    assert (tmp_path / "keras-pipeline" / "stages").is_dir()
