"""Shared start of every job: make sure ``import sparkdl`` is this project, then set up logging.

Databricks ML runtimes before 16.0 preinstall an unrelated package also called ``sparkdl``; if it
is found first, this project's modules do not exist and the job stops here with the fix.
"""

from __future__ import annotations

import sys


def bootstrap(level: str = "INFO") -> None:
    """Refuse a foreign ``sparkdl`` and configure logging for a job."""
    import sparkdl

    if getattr(sparkdl, "__project__", None) != "sparkdl-pipeline":
        sys.exit(
            f"'import sparkdl' resolves to {getattr(sparkdl, '__file__', '?')}, which is not the "
            "sparkdl-pipeline project (Databricks preinstalls an old package of that name). "
            "Install sparkdl-pipeline's wheel into a fresh environment or ship the packed "
            "environment with spark-submit --archives."
        )
    from sparkdl.identity import require_this_project
    from sparkdl.logs import configure_logging

    configure_logging(level)
    require_this_project()
