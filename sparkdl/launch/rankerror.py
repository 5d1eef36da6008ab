"""A rank's own error, carried to the driver before the rank exits.

When a rank fails, Horovod shuts down on its peers, which then fail too ("Horovod has been shut
down"), and Spark reports whichever task failure reaches it first: often a peer's, which says
nothing of the cause. So a rank's child process reports its exception to the driver's
rendezvous server (signed, like every rank report) under ``/sparkdl-rank-error/rank-<r>``
before it exits (:func:`record_rank_error`), which is before any peer can fail; the driver
names the first such error that is not a peer's shutdown (:func:`reported_rank_error`),
whichever task Spark blames. Bad input has its own report (:mod:`sparkdl.launch.inputerror`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)

SCOPE = "sparkdl-rank-error"
# what a peer of the failing rank raises once Horovod shuts down: a consequence, not a cause
_CONSEQUENCES = ("Horovod has been shut down", "HorovodInternalError")


def is_consequence(text: str) -> bool:
    """Whether a failure's text is a peer's Horovod shutdown rather than a cause.

    Examples
    --------
    >>> is_consequence("HorovodInternalError: Horovod has been shut down"), is_consequence("OOM")
    (True, False)
    """
    return any(mark in text for mark in _CONSEQUENCES)


def report_to_driver(scope: str, doc: dict[str, str], *, what: str) -> None:
    """Child side: PUT ``doc`` under ``scope`` at the driver's rendezvous server (named by
    ``HOROVOD_GLOO_RENDEZVOUS_ADDR`` / ``_PORT``) as rank ``HOROVOD_RANK``, signed like every
    rank report. A no-op without them (a test calling a function directly); a report that
    fails is logged (naming ``what``), never raised."""
    addr = os.environ.get("HOROVOD_GLOO_RENDEZVOUS_ADDR")
    port = os.environ.get("HOROVOD_GLOO_RENDEZVOUS_PORT")
    rank = os.environ.get("HOROVOD_RANK")
    if not (addr and port and rank):
        return
    from sparkdl.launch.watch import send

    try:
        send(addr, int(port), scope, f"rank-{int(rank)}", doc, timeout_s=5)
    except Exception as exc_send:  # the task's own failure still reaches the driver
        logger.warning("could not report %s to the driver: %s", what, exc_send)


def record_rank_error(exc: BaseException) -> None:
    """Child side: report ``exc`` to the driver (:func:`report_to_driver`)."""
    doc = {"class": type(exc).__name__, "message": str(exc)[:4000]}
    report_to_driver(SCOPE, doc, what="the rank's error")


def reported_rank_error(reports: Mapping[str, bytes]) -> str:
    """Driver side: ``"(rank r) Class: message"`` of the first reported error that is not a
    peer's shutdown ('' when there is none); ``reports`` as the ranks PUT them, in order.

    Examples
    --------
    >>> reported_rank_error({
    ...     "rank-0": b'{"class": "RuntimeError", "message": "injected fault"}',
    ...     "rank-1": b'{"class": "HorovodInternalError", "message": "Horovod has been shut down"}',
    ... })
    '(rank 0) RuntimeError: injected fault'
    >>> reported_rank_error({})
    ''
    """
    for key, raw in reports.items():
        try:
            doc = json.loads(raw)
            text = f"{doc['class']}: {doc['message']}"
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable error report %s from a rank; ignored", key)
            continue
        if not is_consequence(text):
            return f"({key.replace('-', ' ')}) {text}"
    return ""
