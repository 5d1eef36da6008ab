"""Example Airflow DAG: the sparkdl pipeline every night with spark-submit.

Copy it to your DAGs folder and set the variables at the top. ``--run-date {{ ds }}`` makes the
logical date the run id, so a retried or re-triggered task resumes that night's run instead of
starting over, and a finished night is not run twice. The job's exit codes tell Airflow what
happened: 0 done, 2 bad input or config (fix the data or config; a retry will fail the same
way), 3 infrastructure failure (the retries below are for this), 1 anything else.
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.operators.bash import BashOperator

SPARKDL_HOME = "/opt/sparkdl"  # a clone with scripts/setup.sh run once
CONFIG = f"{SPARKDL_HOME}/conf/local.yaml"  # or your cluster profile
MASTER = "local[2]"  # or yarn, spark://host:7077

with DAG(
    dag_id="sparkdl_nightly",
    start_date=dt.datetime(2026, 11, 1),
    schedule="0 2 * * *",
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["sparkdl"],
) as dag:
    BashOperator(
        task_id="pipeline",
        bash_command=(
            f"cd {SPARKDL_HOME} && source .venv/bin/activate && "
            f"spark-submit --master '{MASTER}' jobs/pipeline.py --config {CONFIG} "
            "--run-date {{ ds }}"
        ),
    )
