"""The whole pipeline as one resumable run: generate, prepare, train, baselines, evaluate, report.

Runs ``pipeline.steps`` in order under ``<pipeline.root>/<run id>/`` (``state.json``,
``pipeline.log``, each step's output, ``report/report.md``). Re-running a finished run does
nothing; re-running a failed one resumes at its first unfinished step. For scheduled use pass
``--run-date`` (the logical date, also the default run id) or ``--run-id``.
Exit codes: 0 done, 2 bad input or config, 3 infrastructure failure (retry later),
1 anything else.

Run locally::

    .venv/bin/python jobs/pipeline.py --config conf/local.yaml --run-date 2026-11-22

or with spark-submit (the master on its command line wins over the profile's)::

    source .venv/bin/activate
    spark-submit --master 'local[2]' jobs/pipeline.py --config conf/local.yaml
"""

from __future__ import annotations

import sys

from _bootstrap import bootstrap


def main(argv: list[str] | None = None) -> int:
    """Run ``pipeline`` with this job's arguments and return its exit code."""
    bootstrap()
    from sparkdl.commands import job_main

    return job_main("pipeline", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
