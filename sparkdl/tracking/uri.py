"""The tracking URI: resolved from the config, redacted for logs, checked before a run starts.

A plain path (the default ``./mlruns``) is a local file store and becomes an absolute
``file:`` URI, so that every step of a run logs to the same folder whatever the working folder
is later. The check at start makes a tracking server that cannot be reached fail the run before
any Spark job, not after an hour of training.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sparkdl.config.tracking import TrackingConfig
from sparkdl.errors import BadInputError, InfraError

logger = logging.getLogger(__name__)

KEY = "tracking.tracking_uri"
DEFAULT_STORE = "mlruns"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SECRET_QUERY = re.compile(r"(?i)(token|secret|password|passwd|key|sig|signature|auth)")
_OFF = "or set tracking.mlflow=false to run without tracking"


def resolve_uri(
    cfg: TrackingConfig, *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> str:
    """The tracking URI a run logs to: ``tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``,
    else ``./mlruns``; a path (no scheme) is made an absolute ``file:`` URI.

    Examples
    --------
    >>> resolve_uri(TrackingConfig(), env={}, cwd="/work")
    'file:///work/mlruns'
    >>> resolve_uri(TrackingConfig(tracking_uri="http://mlflow:5000"), env={})
    'http://mlflow:5000'
    >>> resolve_uri(TrackingConfig(), env={"MLFLOW_TRACKING_URI": "/tmp/store"})
    'file:///tmp/store'
    """
    env = os.environ if env is None else env
    value = (cfg.tracking_uri or env.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE).strip()
    match = _SCHEME.match(value)
    if match is None or len(match.group(1)) == 1:  # a path (or a Windows drive letter)
        return Path(os.path.join(cwd or os.getcwd(), value)).resolve().as_uri()
    if match.group(1).lower() == "file":
        rest = value[len("file:") :]
        if not rest.startswith("/"):  # file:relative/path
            return Path(os.path.join(cwd or os.getcwd(), rest)).resolve().as_uri()
    return value


def redact(uri: str) -> str:
    """``uri`` without credentials: the user info and secret-looking query values masked.

    Examples
    --------
    >>> redact("https://alice:s3cret@mlflow.example.com/?token=abc&x=1")
    'https://***@mlflow.example.com/?token=***&x=1'
    >>> redact("file:///tmp/mlruns")
    'file:///tmp/mlruns'
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable tracking URI>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*"
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing to hide (and sqlite:////abs keeps its four slashes)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def file_store_path(uri: str) -> Path | None:
    """The folder of a ``file:`` tracking URI, or None for any other scheme.

    Examples
    --------
    >>> file_store_path("file:///tmp/mlruns"), file_store_path("http://h:5000")
    (PosixPath('/tmp/mlruns'), None)
    """
    parts = urlsplit(uri)
    if parts.scheme != "file":
        return None
    from urllib.request import url2pathname

    return Path(url2pathname(parts.path))


def check_reachable(uri: str, *, timeout_s: float) -> None:
    """Fail now when the tracking store at ``uri`` cannot be used.

    A file store must be a folder this process can create and write; a server (``http``,
    ``https``) must accept a connection and answer MLflow's REST API within ``timeout_s``,
    without retries; other schemes (``databricks``, a database) are asked for one experiment.

    Raises
    ------
    BadInputError
        A URI that cannot be parsed, a file store that is not a writable folder, a server that
        refuses the credentials (HTTP 401/403) or answers that it is not an MLflow server, a
        store this MLflow cannot use (a database with mlflow-skinny).
    InfraError
        A server that refuses the connection, does not answer in time, or fails (HTTP 5xx).

    Examples
    --------
    >>> check_reachable("http://127.0.0.1:9", timeout_s=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sparkdl.errors.InfraError: tracking.tracking_uri='http://127.0.0.1:9' cannot be reached...
    """
    shown = redact(uri)
    folder = file_store_path(uri)
    if folder is not None:
        _check_folder(folder, shown)
        return
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_server(uri, shown, timeout_s=timeout_s)
        return
    _check_other(uri, shown)


def _check_folder(folder: Path, shown: str) -> None:
    """A local file store: create it, then prove it is writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"{KEY}={shown!r}: cannot create the file store folder {str(folder)!r} "
            f"({exc.strerror or exc}); point it at a writable folder, {_OFF}"
        ) from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(
            f"{KEY}={shown!r}: {str(folder)!r} is not a writable folder; point it at a "
            f"writable folder, {_OFF}"
        )


def _check_server(uri: str, shown: str, *, timeout_s: float) -> None:
    """A tracking server: a TCP connection, then one REST call without retries."""
    parts = urlsplit(uri)
    host = parts.hostname
    if not host:
        raise BadInputError(f"{KEY}={shown!r} has no host; write it as http://host:port")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise BadInputError(f"{KEY}={shown!r} has a port that is not a number") from None
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise InfraError(
            f"{KEY}={shown!r} cannot be reached: connecting to {host}:{port} failed "
            f"({exc.strerror or exc}) within {timeout_s:g} s. Start the tracking server "
            f"(mlflow server --host {host} --port {port}), correct {KEY}, {_OFF}"
        ) from None
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/search",
            "GET",
            params={"max_results": 1},
            max_retries=0,
            timeout=timeout_s,
            raise_on_status=False,
        )
    except (MlflowException, OSError) as exc:
        raise InfraError(
            f"{KEY}={shown!r} accepted a connection but did not answer MLflow's API within "
            f"{timeout_s:g} s ({type(exc).__name__}); check the server, {_OFF}"
        ) from None
    status = response.status_code
    if status in (401, 403):
        raise BadInputError(
            f"{KEY}={shown!r} refused the credentials (HTTP {status}); set MLFLOW_TRACKING_TOKEN "
            f"or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, {_OFF}"
        )
    if status >= 500:
        raise InfraError(f"{KEY}={shown!r} failed with HTTP {status}; check the server, {_OFF}")
    if status != 200:
        raise BadInputError(
            f"{KEY}={shown!r} answered HTTP {status} to MLflow's REST API: it is not an MLflow "
            f"tracking server; correct {KEY}, {_OFF}"
        )


def _check_other(uri: str, shown: str) -> None:
    """Any other scheme: let MLflow open the store and list one experiment."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except (MlflowException, OSError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        if isinstance(exc, ImportError) or "Unsupported" in type(exc).__name__:
            raise BadInputError(
                f"{KEY}={shown!r}: this MLflow cannot use that store ({type(exc).__name__}). "
                "mlflow-skinny has no database stores: use a tracking server (http://host:port) "
                "or a file store (a folder), or install the full mlflow (pip install -c "
                f"requirements/constraints.txt mlflow==3.17.2), {_OFF}"
            ) from None
        raise InfraError(
            f"{KEY}={shown!r} cannot be used: {type(exc).__name__}: {redact(first)}; correct "
            f"{KEY}, {_OFF}"
        ) from None
