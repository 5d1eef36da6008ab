"""Bad input on a rank, carried to the driver so that the run ends instead of being retried.

A rank that raises a :class:`~sparkdl.errors.BadInputError` (or a
:class:`~sparkdl.errors.ClusterMisfitError`) would fail the same way on every attempt. Its child
process records the error twice before it exits (:func:`record_input_error`):

- in ``<result>.error.json`` beside its result file, which its barrier task puts into the
  failure text (:func:`input_error_note`), and
- at the driver's rendezvous server, signed like every rank report, under
  ``/sparkdl-input-error/rank-<r>``.

The second copy is what makes the outcome certain. Once the failing rank exits, Horovod shuts
down on its peers, which then fail too ("Horovod has been shut down"), and Spark reports
whichever task failure reaches it first. The report reaches the driver before the rank exits, so
before any peer can fail, and the driver reads it (:func:`reported_input_error`) whichever task
Spark blames.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from sparkdl.errors import BadInputError, ClusterMisfitError, SparkdlError
from sparkdl.launch.rankerror import report_to_driver

logger = logging.getLogger(__name__)

SCOPE = "sparkdl-input-error"
_MARK = "sparkdl-input-error:"
_TOKEN = re.compile(re.escape(_MARK) + r"([A-Za-z0-9+/=]+)")


def _error_file(result: Path | str) -> Path:
    return Path(f"{result}.error.json")


def _note(doc: dict[str, str]) -> str:
    token = base64.b64encode(json.dumps(doc).encode()).decode()
    return f" on bad input: {doc['class']}: {doc['message']} [{_MARK}{token}]"


def record_input_error(exc: SparkdlError, *, result: Path | str) -> None:
    """Child side: write ``exc`` beside the result file and report it to the driver.

    The report goes to the rendezvous server named by ``HOROVOD_GLOO_RENDEZVOUS_ADDR`` /
    ``_PORT`` as rank ``HOROVOD_RANK``; a rank started without them (a test calling the function
    directly) only writes the file, and a report that fails is logged, never raised.
    """
    doc = {"class": type(exc).__name__, "message": str(exc)}
    _error_file(result).write_text(json.dumps(doc))
    report_to_driver(SCOPE, doc, what="the bad input")


def input_error_note(result: Path | str) -> str:
    """Task side: the bad-input error the child recorded, as text for its failure ('' if none)."""
    try:
        doc = json.loads(_error_file(result).read_text())
    except (OSError, ValueError):
        return ""
    return _note(doc)


def reported_input_error(reports: Mapping[str, bytes]) -> str:
    """Driver side: the note of the lowest rank that reported bad input ('' when none did).

    ``reports`` is what the ranks PUT under :data:`SCOPE` (``rdv.scope_items(SCOPE)``).

    Examples
    --------
    >>> doc = b'{"class": "BadInputError", "message": "no such column: y"}'
    >>> reported_input_error({"rank-1": doc}).startswith(" (rank 1) on bad input: BadInputError: no")
    True
    >>> reported_input_error({})
    ''
    """
    for key in sorted(reports, key=_rank_of):
        try:
            doc = json.loads(reports[key])
            note = _note({"class": str(doc["class"]), "message": str(doc["message"])})
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable bad-input report %s from a rank; ignored", key)
            continue
        return f" ({key.replace('-', ' ')}){note}"
    return ""


def _rank_of(key: str) -> int:
    tail = key.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 1 << 30


def input_error_in(text: str) -> SparkdlError | None:
    """The bad-input error a rank raised, rebuilt from a failure's text (None when none).

    Examples
    --------
    >>> input_error_in("lost executor") is None
    True
    >>> input_error_in(reported_input_error({"rank-0": b'{"class": "BadInputError", "message": "m"}'}))
    BadInputError('m')
    """
    match = _TOKEN.search(text)
    if match is None:
        return None
    try:
        doc = json.loads(base64.b64decode(match.group(1)))
        message, name = str(doc["message"]), str(doc["class"])
    except (ValueError, KeyError, TypeError):
        return None
    cls = ClusterMisfitError if name == "ClusterMisfitError" else BadInputError
    return cls(message)
