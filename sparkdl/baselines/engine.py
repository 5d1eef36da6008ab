"""Where the baselines' map and reduce steps run: Spark jobs, or one live barrier stage.

Both engines offer the same primitive, ``map_reduce(fn, arg, merge)``: ``fn(block, arg)`` runs
once per partition on that partition's cached numpy block and the results are merged in
partition order, so the algorithms (:mod:`sgd`, :mod:`kmeans`) are written once as driver-side
loops over this primitive.

- :class:`JobsEngine` is classic Spark MapReduce: the blocks are a persisted RDD, each call is
  one Spark job (``broadcast`` + ``map``); the per-partition results (model-sized) are merged on
  the driver in partition order by :func:`fold`, the same merge as the barrier engine's, so both
  give bit-identical models. Spark retries failed tasks.
- :class:`BarrierEngine` starts one barrier stage of ``partitions`` tasks that load their block
  once and stay up; each task connects to a small TCP server on the driver (authenticated by
  a mutual HMAC handshake with a per-engine secret, and closed once every task is in; every
  message after it carries a MAC under the connection's session key, checked before it is
  unpickled), and each call sends ``(fn, arg)`` to every task and merges the replies. An iteration then costs its compute plus a
  round trip instead of a Spark job (150 to 300 ms on a 2-core machine). A failed task fails the
  stage; the caller retries the algorithm from the start (results are deterministic).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from functools import reduce
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sparkdl.baselines import common
from sparkdl.baselines import handshake as wire
from sparkdl.baselines.blocks import Block, BlockPlan, build_block
from sparkdl.errors import BadInputError, ClusterMisfitError, InfraError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_TIMEOUT_CONF = "sparkdl.engine.connectTimeout"
# A task gives the driver this long to answer its handshake before it fails the stage.
_TASK_HANDSHAKE_S = 60.0


class EngineError(InfraError):
    """A task of the barrier engine failed or went away; the message says which and why."""


class Engine(Protocol):
    """The map-reduce primitive the baseline algorithms are written against."""

    partitions: int

    def map_reduce(self, fn: Callable[[Block, Any], T], arg: Any, merge: Callable[[T, T], T]) -> T:
        """Run ``fn(block, arg)`` on every block; merge the results in partition order."""
        ...


def fold(results: Sequence[T], merge: Callable[[T, T], T]) -> T:
    """Merge results in order: a left fold up to 16, a pairwise tree beyond (like treeReduce).

    Examples
    --------
    >>> fold([1, 2, 3], lambda a, b: a + b)
    6
    """
    if len(results) <= 16:
        return reduce(merge, results)
    level = list(results)
    while len(level) > 1:
        level = [
            merge(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


class JobsEngine:
    """One Spark job per call over a persisted RDD of blocks (Spark retries failed tasks)."""

    def __init__(self, spark: SparkSession, plan: BlockPlan) -> None:
        from pyspark import StorageLevel

        self.partitions = plan.partitions
        dim, dtype = plan.dim, plan.label_dtype

        def load(items: Any) -> Any:
            for item in items:
                yield build_block(item, dim=dim, label_dtype=dtype)

        self._rdd = (
            spark.sparkContext.parallelize(plan.items, plan.partitions)
            .mapPartitions(load)
            .setName(f"sparkdl blocks {plan.name}")
            .persist(StorageLevel.MEMORY_ONLY)
        )

    def map_reduce(self, fn: Callable[[Block, Any], T], arg: Any, merge: Callable[[T, T], T]) -> T:
        """See :class:`Engine`."""
        bc = self._rdd.context.broadcast(arg)
        try:
            results = self._rdd.map(lambda b: (b.part, fn(b, bc.value))).collect()
        finally:
            bc.unpersist()
        return fold([r for _, r in sorted(results, key=lambda r: r[0])], merge)

    def close(self) -> None:
        """Drop the cached blocks."""
        self._rdd.unpersist()

    def __enter__(self) -> JobsEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _task_loop(host: str, port: int, secret: bytes, attempt: int, dim: int, dtype: str) -> Any:
    """Build the function each barrier task runs: load the block, then serve calls.

    ``secret`` travels in this closure (Spark's task serialisation), never over the engine's
    own socket; the task proves it and checks the driver's proof, and then every message's MAC,
    before it unpickles anything.
    """

    def run(items: Any) -> Any:
        import cloudpickle

        common.ENGINE_ATTEMPT = attempt
        item = next(iter(items))
        block = build_block(item, dim=dim, label_dtype=dtype)
        with socket.create_connection((host, port), timeout=_TASK_HANDSHAKE_S) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            channel = wire.join_handshake(sock, secret=secret, part=block.part)
            sock.settimeout(None)
            while True:
                message = channel.recv()  # its MAC checked before it is unpickled
                if not message:
                    break
                fn, arg = cloudpickle.loads(message)
                try:
                    reply = ("ok", fn(block, arg))
                except Exception:
                    channel.send(pickle.dumps(("error", traceback.format_exc())))
                    raise
                channel.send(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        yield block.part

    return run


class BarrierEngine:
    """A barrier stage of ``partitions`` live tasks serving ``map_reduce`` calls over TCP.

    The driver listens on ``spark.driver.host`` only until every task has connected. Each
    connection must pass a mutual HMAC handshake (:mod:`sparkdl.baselines.handshake`) within
    ``handshake_timeout_s`` before anything it sends is read as a message; a peer that fails
    it is dropped and logged, and the job goes on. After it, every message is authenticated
    (:class:`~sparkdl.baselines.handshake.Channel`) before it is unpickled.

    Parameters
    ----------
    spark : SparkSession
        The session; the cluster must run all ``partitions`` tasks at once.
    plan : BlockPlan
        Which rows each task loads.
    attempt : int
        Passed to the tasks (fault injection fires on attempt 0 only).
    timeout_s : float
        How long to wait for any one reply.
    connect_timeout_s : float, optional
        How long to wait for every task to connect; default: the Spark conf
        ``sparkdl.engine.connectTimeout`` (seconds, 600 when unset). The wait also ends as soon
        as the barrier stage fails.
    handshake_timeout_s : float
        How long one connection may take to authenticate.

    Examples
    --------
    >>> with BarrierEngine(spark, plan) as engine:  # doctest: +SKIP
    ...     engine.map_reduce(lambda block, _: len(block.y), None, operator.add)
    """

    def __init__(
        self,
        spark: SparkSession,
        plan: BlockPlan,
        *,
        attempt: int = 0,
        timeout_s: float = 600.0,
        connect_timeout_s: float | None = None,
        handshake_timeout_s: float = 5.0,
    ) -> None:
        from sparkdl.launch.preflight import settled_slots

        self.partitions = plan.partitions
        slots = settled_slots(spark, want=plan.partitions, wait_s=30.0)
        if plan.partitions > slots:
            raise ClusterMisfitError(
                f"{plan.partitions} partitions but the cluster runs {slots} tasks at once; the "
                "barrier engine needs one live task per partition: lower the partitions setting "
                "or choose engine=jobs"
            )
        sc = spark.sparkContext
        host = sc.getConf().get("spark.driver.host", socket.gethostname())
        self._timeout = timeout_s
        self._connect_timeout = _connect_timeout(sc.getConf(), connect_timeout_s)
        self._handshakes = wire.HandshakePool(
            partitions=plan.partitions, timeout_s=handshake_timeout_s
        )
        self._server = socket.create_server((host, 0))
        self._server.settimeout(0.1)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        secret = wire.new_secret()
        group = f"sparkdl-engine-{secrets.token_hex(4)}"
        task = _task_loop(host, self.address[1], secret, attempt, plan.dim, plan.label_dtype)
        rdd = sc.parallelize(plan.items, plan.partitions).barrier().mapPartitions(task)
        self._failure: BaseException | None = None
        self._sc, self._group = sc, group

        def run_stage() -> None:
            sc.setJobGroup(group, f"sparkdl baseline engine on {plan.name}", True)
            try:
                rdd.collect()
            except BaseException as exc:  # reported by map_reduce / close
                self._failure = exc

        self._thread = threading.Thread(target=run_stage, name=group, daemon=True)
        self._thread.start()
        self._conns: dict[int, wire.Channel] = {}
        try:
            self._accept(secret)
        except BaseException:
            self.close()
            raise

    def _accept(self, secret: bytes) -> None:
        """Accept connections until every partition has one authenticated task, then stop
        listening; each handshake runs on its own thread, so a silent peer holds up nothing."""
        deadline = time.monotonic() + self._connect_timeout
        try:
            while len(self._conns) < self.partitions:
                for part, conn, peer in self._handshakes.take():
                    if part in self._conns:
                        logger.warning(
                            "engine: refused a second connection for partition %d from %s",
                            part,
                            wire.describe_peer(peer),
                        )
                        conn.close()
                        continue
                    conn.settimeout(self._timeout)
                    self._conns[part] = conn
                if len(self._conns) == self.partitions:
                    break
                if self._failure is not None or not self._thread.is_alive():
                    raise EngineError(
                        f"the barrier stage ended before all tasks connected: {self._failure}"
                    )
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"only {len(self._conns)} of {self.partitions} barrier tasks connected "
                        f"within {self._connect_timeout:g} s; raise {CONNECT_TIMEOUT_CONF} if "
                        "the cluster is slow to start them"
                    )
                try:
                    conn, peer = self._server.accept()
                except TimeoutError:
                    continue
                self._handshakes.start(conn, peer, secret)
        finally:
            self._handshakes.stop()
            self._server.close()

    def map_reduce(self, fn: Callable[[Block, Any], T], arg: Any, merge: Callable[[T, T], T]) -> T:
        """See :class:`Engine`."""
        import cloudpickle

        message = cloudpickle.dumps((fn, arg))
        parts = sorted(self._conns)
        try:
            for p in parts:
                self._conns[p].send(message)
            # each reply's MAC is checked by Channel.recv before it is unpickled
            replies = [pickle.loads(self._conns[p].recv()) for p in parts]
        except (OSError, ConnectionError) as exc:
            self._thread.join(timeout=30)
            raise EngineError(
                f"a barrier task went away: {exc}; stage failure: {self._failure}"
            ) from exc
        for p, (status, value) in zip(parts, replies, strict=True):
            if status == "error":
                raise EngineError(f"partition {p} failed:\n{value}")
        return fold([value for _, value in replies], merge)

    def close(self) -> None:
        """Tell the tasks to finish, wait for the stage, and close the server."""
        for conn in self._conns.values():
            with contextlib.suppress(OSError):
                conn.send(b"")
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            self._sc.cancelJobGroup(self._group)
            self._thread.join(timeout=30)
        for conn in self._conns.values():
            conn.close()
        self._handshakes.stop()
        self._server.close()

    def __enter__(self) -> BarrierEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect_timeout(conf: Any, given: float | None) -> float:
    """``given``, else the Spark conf ``sparkdl.engine.connectTimeout`` (seconds, default 600)."""
    if given is not None:
        return given
    raw = conf.get(CONNECT_TIMEOUT_CONF, "600")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise BadInputError(
            f"{CONNECT_TIMEOUT_CONF}={raw!r} is not a positive number of seconds; set it to, "
            "say, 600"
        )
    return value


def open_engine(
    spark: SparkSession, plan: BlockPlan, *, kind: str, attempt: int
) -> JobsEngine | BarrierEngine:
    """The engine ``kind`` (``barrier`` or ``jobs``) over ``plan``."""
    if kind == "jobs":
        return JobsEngine(spark, plan)
    return BarrierEngine(spark, plan, attempt=attempt)


def run_with_retries(
    spark: SparkSession,
    plan: BlockPlan,
    *,
    kind: str,
    max_attempts: int,
    algorithm: Callable[[Engine], T],
) -> T:
    """Run ``algorithm(engine)``; after a barrier-engine failure, start again (up to
    ``max_attempts``; the algorithms are deterministic, so a retry gives the same result)."""
    attempt = 0
    while True:
        try:
            with open_engine(spark, plan, kind=kind, attempt=attempt) as engine:
                return algorithm(engine)
        except EngineError as exc:
            attempt += 1
            if attempt >= max_attempts:
                raise
            logger.warning(
                "engine attempt %d of %d failed, starting again: %s",
                attempt,
                max_attempts,
                str(exc)[:2000],
            )
