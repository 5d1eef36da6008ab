"""The example Airflow DAG is valid Python and calls the pipeline job the way the README says."""

from __future__ import annotations

import ast
from pathlib import Path


def test_airflow_dag_compiles_and_runs_the_pipeline_job(repo: Path) -> None:
    source = (repo / "examples" / "airflow_dag.py").read_text()
    tree = ast.parse(source)  # a syntax error fails here
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert any(getattr(c.func, "id", None) == "BashOperator" for c in calls)
    assert "jobs/pipeline.py" in source and "--run-date {{ ds }}" in source
    assert (repo / "jobs" / "pipeline.py").is_file()
