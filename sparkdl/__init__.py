"""sparkdl: Spark prepares the data, a barrier stage of Horovod ranks trains on it.

The import name ``sparkdl`` is shared with an old Databricks package (preinstalled on Databricks
ML runtimes before 16.0). ``__project__`` tells the two apart: code that must be sure it runs
this project's package calls :func:`sparkdl.identity.require_this_project`.
"""

__version__ = "0.1.0"
__project__ = "sparkdl-pipeline"

__all__ = ["__project__", "__version__"]
