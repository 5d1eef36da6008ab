"""The pipeline run's log file, ``<run dir>/pipeline.log``, on any store (see :class:`RunLog`)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sparkdl.store import Store

logger = logging.getLogger(__name__)

LOG = "pipeline.log"


class RunLog:
    """INFO and above into the run's ``pipeline.log``, without making the console chattier.

    On a mounted store the file is written in place; otherwise in the driver's temporary folder
    (seeded with the log of earlier attempts) and published by :meth:`publish` and
    :meth:`close`.

    Examples
    --------
    >>> from sparkdl.store.arrow import ArrowStore
    >>> log = RunLog(ArrowStore(tempfile.mkdtemp()))
    >>> logging.getLogger("sparkdl.example").info("step 1 done")
    >>> log.close()
    >>> "step 1 done" in (log.path.read_text())
    True
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._staged: Path | None = None
        path = store.local_path(LOG)
        if path is None:
            fd, name = tempfile.mkstemp(prefix="sparkdl-pipeline-", suffix=".log")
            self._staged = path = Path(name)
            with open(fd, "wb") as f:
                if store.exists(LOG):
                    f.write(store.read_bytes(LOG))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        root = logging.getLogger()
        self._before = root.level
        self._quiet = [h for h in root.handlers if h.level == logging.NOTSET]
        for h in self._quiet:
            h.setLevel(self._before or logging.WARNING)
        self.path = path  # where the log is written on this machine
        self._handler = logging.FileHandler(path)
        self._handler.setLevel(logging.INFO)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
        self._handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(self._handler)
        root.setLevel(min(self._before or logging.WARNING, logging.INFO))

    def publish(self) -> None:
        """Copy the staged log to the store (nothing on a mounted store)."""
        if self._staged is not None:
            self._handler.flush()
            self._store.write_bytes(LOG, self._staged.read_bytes())

    def close(self) -> None:
        """Stop logging into the file, publish it a last time and drop the staged copy."""
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._before)
        for h in self._quiet:
            h.setLevel(logging.NOTSET)
        self._handler.close()
        try:
            self.publish()
        except Exception as exc:  # the run's own error, if any, matters more
            logger.warning("could not publish %s to %s: %s", LOG, self._store.uri, exc)
        finally:
            if self._staged is not None:
                self._staged.unlink(missing_ok=True)
