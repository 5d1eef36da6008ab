"""The example Airflow DAG: valid, calls the pipeline job as README says, and never retries 2."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest


def test_airflow_dag_compiles_and_runs_the_pipeline_job(repo: Path) -> None:
    source = (repo / "examples" / "airflow_dag.py").read_text()
    tree = ast.parse(source)  # a syntax error fails here
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert any(getattr(c.func, "id", None) == "SparkdlJobOperator" for c in calls)
    assert "jobs/pipeline.py" in source and "--run-date {{ ds }}" in source
    assert "from airflow.providers.standard.operators.bash import BashOperator" in source
    assert (repo / "jobs" / "pipeline.py").is_file()


@pytest.mark.skipif(
    importlib.util.find_spec("airflow") is None,
    reason="Airflow is not installed in this environment (it is not a sparkdl dependency)",
)
def test_airflow_loads_the_dag_and_does_not_retry_exit_2(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.models import DagBag

    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # Airflow 2
        from airflow.exceptions import AirflowFailException

    bag = DagBag(dag_folder=str(repo / "examples"))
    assert bag.import_errors == {}
    dag = bag.dags["sparkdl_nightly"]  # parsed from the file; get_dag would ask the metadata DB
    task = dag.get_task("pipeline")
    assert task.retries == 2
    task.bash_command = "exit 2"
    with pytest.raises(AirflowFailException, match="exited 2"):
        task.execute(context={})
    task.bash_command = "exit 3"
    with pytest.raises(Exception, match="exit code 3") as info:
        task.execute(context={})
    assert not isinstance(info.value, AirflowFailException)
