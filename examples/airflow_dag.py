"""Example Airflow DAG: the sparkdl pipeline every night with spark-submit.

Copy it to your DAGs folder and set the variables at the top. ``--run-date {{ ds }}`` makes the
logical date the run id, so a retried or re-triggered task resumes that night's run instead of
starting over, and a finished night is not run twice. The job's exit codes tell Airflow what
happened (see README, "Exit codes"): 0 done; 2 bad input, config or a cluster that must change
first: the task fails at once, since a retry would fail the same way (fix it, then clear the
task); 3 infrastructure failure and 130 interrupted: the retries below are for these; 1 anything
else (a bug: the traceback is in the log file the job names).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

try:  # Airflow 3
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2
    from airflow.exceptions import AirflowException, AirflowFailException
try:  # Airflow 3, and Airflow 2 with apache-airflow-providers-standard
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2 before the standard provider
    from airflow.operators.bash import BashOperator
try:  # Airflow 3's authoring interface
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

SPARKDL_HOME = "/opt/sparkdl"  # a clone with scripts/setup.sh run once
CONFIG = f"{SPARKDL_HOME}/conf/local.yaml"  # or your cluster profile
MASTER = "local[2]"  # or yarn, spark://host:7077
# sparkdl's "do not retry" code: bad input or config, or a cluster that must change first.
NO_RETRY_EXIT_CODES = frozenset({2})


class SparkdlJobOperator(BashOperator):
    """A BashOperator whose job fails without retries when it exits with a no-retry code."""

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowException:
            code = getattr(getattr(self.subprocess_hook, "sub_process", None), "returncode", None)
            if code in NO_RETRY_EXIT_CODES:
                raise AirflowFailException(
                    f"sparkdl exited {code} (bad input, config or cluster): a retry would fail "
                    "the same way; fix the cause named in the log, then clear this task"
                ) from None
            raise


with DAG(
    dag_id="sparkdl_nightly",
    start_date=dt.datetime(2026, 11, 1),
    schedule="0 2 * * *",
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["sparkdl"],
) as dag:
    SparkdlJobOperator(
        task_id="pipeline",
        bash_command=(
            f"cd {SPARKDL_HOME} && source .venv/bin/activate && "
            f"spark-submit --master '{MASTER}' jobs/pipeline.py --config {CONFIG} "
            "--run-date {{ ds }}"
        ),
    )
