"""sparkdl's own error classes; each carries the exit code a scheduler acts on.

A command's exit code is chosen by the class of the error that ended it, never by a builtin
exception type (:func:`sparkdl.commands.run_command`):

==== ===================================================================================
code meaning
==== ===================================================================================
0    success
1    anything unexpected (a bug, or a check that did not hold); traceback in the log file
2    bad input or config, or a cluster that must change before a retry can work: do not
     retry as is (:class:`BadInputError`, :class:`ClusterMisfitError`,
     :class:`OutputLockedError`)
3    infrastructure that may pass on retry: ranks or tasks that failed every attempt, a lost
     executor, I/O (:class:`InfraError`)
130  interrupted (SIGINT, SIGTERM): stopped, no attempt spent (:class:`RunInterruptedError`)
==== ===================================================================================

The classes also derive from the builtin that describes them (``ValueError`` for bad input,
``RuntimeError`` for the environment), so callers of the library can catch either.

Examples
--------
>>> BadInputError("prepare.source.path 'x' does not exist").exit_code
2
>>> isinstance(InfraError("lost"), RuntimeError), InfraError.exit_code
(True, 3)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class SparkdlError(Exception):
    """Base of sparkdl's errors; ``exit_code`` is what the command line exits with."""

    exit_code: int = EXIT_FAILED


class BadInputError(SparkdlError, ValueError):
    """Input data, arguments or config are wrong; the message names the value and the fix."""

    exit_code = EXIT_BAD_INPUT


class ClusterMisfitError(SparkdlError, RuntimeError):
    """The cluster cannot run this job as configured (too few slots, wrong Python on the
    executors); it must change before a retry can work."""

    exit_code = EXIT_BAD_INPUT


class OutputLockedError(SparkdlError, RuntimeError):
    """Another run holds the lock on an output root; the message names the holder."""

    exit_code = EXIT_BAD_INPUT


class InfraError(SparkdlError, RuntimeError):
    """Infrastructure failed (ranks, tasks, executors, I/O); retrying later may help."""

    exit_code = EXIT_INFRA


class RunInterruptedError(SparkdlError):
    """The run was interrupted (SIGINT or SIGTERM) and stopped; no attempt was spent on it."""

    exit_code = EXIT_INTERRUPTED
