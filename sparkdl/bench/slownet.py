"""A slower network on one machine: run a command under ``scripts/slownet.sh``.

The command (a whole job, driver, executors and ranks) runs in a private network namespace whose
loopback is rate-limited with a token bucket (``tc tbf``): 1 or 10 Gbit/s, or ``off`` (the
namespace's own loopback, unthrottled). It needs root; where it cannot run the script exits 77
and :func:`run_in_slow_network` raises :class:`SlowNetUnsupportedError` with the script's reason, so a
benchmark can run its unthrottled part and a test can skip with that reason.

Examples
--------
>>> slow_network_command(["python", "-V"], rate="1gbit")[2:]
['--rate', '1gbit', '--', 'python', '-V']
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

RATES = ("off", "10gbit", "1gbit")
EXIT_UNSUPPORTED = 77
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slownet.sh"


class SlowNetUnsupportedError(RuntimeError):
    """The rate-limited namespace cannot run here (not root, no unshare or tc)."""


def slow_network_command(cmd: Sequence[str], *, rate: str) -> list[str]:
    """``cmd`` wrapped to run in a namespace whose loopback runs at ``rate``."""
    return ["bash", str(SCRIPT), "--rate", rate, "--", *cmd]


def run_in_slow_network(
    cmd: Sequence[str], *, rate: str, timeout_s: float = 600, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` at ``rate`` and return the finished process (stdout and stderr as text).

    Raises
    ------
    SlowNetUnsupportedError
        When the namespace cannot be made here; its message is the script's reason.
    """
    if not SCRIPT.is_file():
        raise SlowNetUnsupportedError(
            f"{SCRIPT} is missing: the slow network needs sparkdl's repository checkout "
            "(scripts/slownet.sh), not an installed wheel"
        )
    done = subprocess.run(
        slow_network_command(cmd, rate=rate),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )
    if done.returncode == EXIT_UNSUPPORTED and "[slownet] UNSUPPORTED:" in done.stderr:
        reason = done.stderr.split("[slownet] UNSUPPORTED:", 1)[1].strip().splitlines()[0]
        raise SlowNetUnsupportedError(reason)
    return done
