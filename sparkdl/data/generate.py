"""Synthetic raw data built on the executors, deterministic by seed (``sparkdl generate``).

Every random value is counter-based: a uniform in (0, 1) is the 64-bit ``xxhash64`` of
``(seed, stream, index, id)`` reduced to 52 bits, so a row depends only on the seed, its id and
the stream, never on how many partitions or executors produced it. Normals come from two such
uniforms by Box-Muller. Rows are Spark SQL expressions over ``spark.range``; the driver only
draws model-sized constants (term weights, category effects, blob centres) with
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sparkdl.config.data import GenerateConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

_ROWS_PER_PARTITION = 2_000_000
_TWO_52 = 2**52  # h + 0.5 is exact below 2**52, so the uniform never reaches 0 or 1
# Stream families: each random quantity hashes (seed, family, index, id).
_NORMAL, _CATEGORY, _FLIP, _NEW_CLASS, _CLUSTER = 1, 2, 3, 4, 5
_BASIS = ("sin", "cross", "square", "abs", "tanh")
_HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1)
_MAX_TERMS = 12
_MAX_LINEAR = 8
CENTERS_FILE = "centers.json"


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`write_generated` wrote.

    ``centers`` holds the true cluster centres for ``kind: blobs`` (None otherwise); they are
    also in ``<output>/centers.json``.
    """

    output: str
    format: str
    kind: str
    rows: int
    partitions: int
    columns: tuple[str, ...]
    seconds: float
    centers: tuple[tuple[float, ...], ...] | None = None

    def summary(self) -> str:
        """One line for a job's stdout."""
        return (
            f"OK: wrote {self.rows} {self.kind} rows ({len(self.columns)} columns, "
            f"{self.partitions} partitions) as {self.format} to {self.output} "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Term:
    """One zero-mean basis term ``weight * f(x_a, x_b)`` of a class score."""

    basis: str
    a: int
    b: int
    weight: float


def _check(cfg: GenerateConfig) -> None:
    """Refuse seeds that numpy or a Spark long cannot take."""
    if not 0 <= cfg.seed < 2**63:
        raise ValueError(
            f"generate.seed is {cfg.seed}; use an integer in [0, 2**63), e.g. "
            "--set generate.seed=7"
        )


def _hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """Return (Hadoop FileSystem, Path) for any path Spark accepts (file, hdfs, s3a, ...)."""
    jpath = spark._jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark._jsc.hadoopConfiguration()), jpath


def _write_small_file(spark: SparkSession, folder: str, name: str, text: str) -> str:
    """Write UTF-8 ``text`` to ``folder/name`` through Hadoop's FileSystem; return the path."""
    fs, parent = _hadoop_path(spark, folder)
    target = spark._jvm.org.apache.hadoop.fs.Path(parent, name)
    stream = fs.create(target, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return str(target.toString())


def _partitions(spark: SparkSession, cfg: GenerateConfig) -> int:
    """Return cfg.partitions, or enough partitions for the cores and ~2M rows each."""
    if cfg.partitions:
        return cfg.partitions
    return max(spark.sparkContext.defaultParallelism, math.ceil(cfg.rows / _ROWS_PER_PARTITION))


def _uniform(seed: int, family: int, index: int) -> Column:
    """A uniform in (0, 1) that depends only on (seed, family, index, id)."""
    from pyspark.sql import functions as F

    h = F.xxhash64(F.lit(seed).cast("long"), F.lit(family), F.lit(index), F.col("id"))
    return (F.pmod(h, F.lit(_TWO_52)) + F.lit(0.5)) / F.lit(float(_TWO_52))


def _uniform_int(seed: int, family: int, index: int, n: int) -> Column:
    """A uniform integer in [0, n)."""
    from pyspark.sql import functions as F

    k = F.floor(_uniform(seed, family, index) * F.lit(float(n)))
    return F.least(k, F.lit(n - 1)).cast("int")


def _normals(seed: int, count: int) -> list[Column]:
    """``count`` independent N(0, 1) columns; pair j gives Box-Muller's cos and sin outputs."""
    from pyspark.sql import functions as F

    out: list[Column] = []
    for j in range((count + 1) // 2):
        radius = F.sqrt(F.lit(-2.0) * F.log(_uniform(seed, _NORMAL, 2 * j)))
        angle = F.lit(2.0 * math.pi) * _uniform(seed, _NORMAL, 2 * j + 1)
        out.append(radius * F.cos(angle))
        out.append(radius * F.sin(angle))
    return out[:count]


def blob_centers(cfg: GenerateConfig) -> np.ndarray:
    """Return the known blob centres, drawn uniformly in ``[-center_box, center_box]^d``.

    Parameters
    ----------
    cfg : GenerateConfig
        The ``generate`` section; ``seed``, ``clusters``, ``numeric_features`` and
        ``center_box`` are used.

    Returns
    -------
    numpy.ndarray
        Shape ``(clusters, numeric_features)``; row ``k`` is the mean of label ``k``.

    Examples
    --------
    >>> from dataclasses import replace
    >>> blob_centers(replace(GenerateConfig(), kind="blobs", clusters=3, numeric_features=2)).shape
    (3, 2)
    """
    _check(cfg)
    rng = np.random.default_rng(cfg.seed)
    box = cfg.center_box
    return rng.uniform(-box, box, size=(cfg.clusters, cfg.numeric_features))


def _draw_terms(
    rng: np.random.Generator, d: int
) -> tuple[list[_Term], list[tuple[int, float]]]:
    """Draw one class's nonlinear terms and its (weaker) linear terms."""
    bases = _BASIS if d >= 2 else tuple(b for b in _BASIS if b not in ("sin", "cross"))
    n_terms = min(max(4, d), _MAX_TERMS)
    start = int(rng.integers(len(bases)))
    terms = []
    for t in range(n_terms):
        # Cycle through the bases so every class gets each kind of nonlinearity.
        basis = bases[(start + t) % len(bases)]
        a, b = (int(c) for c in rng.choice(d, size=2, replace=d < 2))
        weight = float(rng.uniform(0.6, 1.4) * rng.choice([-1.0, 1.0]))
        terms.append(_Term(basis, a, b, weight))
    cols = rng.choice(d, size=min(d, _MAX_LINEAR), replace=False)
    linear = [(int(c), float(w)) for c, w in zip(cols, rng.normal(0.0, 0.25, size=len(cols)))]
    return terms, linear


def _basis(term: _Term, xs: list[Column]) -> Column:
    """The zero-mean basis function of a term over standard-normal columns."""
    from pyspark.sql import functions as F

    xa, xb = xs[term.a], xs[term.b]
    if term.basis == "sin":
        return F.sin(xa * xb)
    if term.basis == "cross":
        return xa * xb
    if term.basis == "square":
        return xa * xa - F.lit(1.0)
    if term.basis == "abs":
        return F.abs(xa) - F.lit(_HALF_NORMAL_MEAN)
    return F.tanh(xa)


def _classification(df: DataFrame, cfg: GenerateConfig) -> DataFrame:
    """Add x, c and label columns with a planted non-linear decision function."""
    from pyspark.sql import functions as F

    d, m, n_cat, k = cfg.numeric_features, cfg.categorical_features, cfg.categories, cfg.classes
    seed = cfg.seed
    x_names = [f"x{i}" for i in range(d)]
    c_names = [f"c{j}" for j in range(m)]
    df = df.select(
        "id",
        *[z.alias(name) for z, name in zip(_normals(seed, d), x_names)],
        *[_uniform_int(seed, _CATEGORY, j, n_cat).alias(f"_ci{j}") for j in range(m)],
    )
    rng = np.random.default_rng(seed)
    xs = [F.col(name) for name in x_names]
    scores: list[Column] = []
    n_terms = 0
    for _ in range(k):
        terms, linear = _draw_terms(rng, d)
        # Zero-mean per-category effects, so no category shifts the class balance on average.
        effects = rng.normal(0.0, 0.5, size=(m, n_cat))
        effects -= effects.mean(axis=1, keepdims=True)
        parts = [F.lit(t.weight) * _basis(t, xs) for t in terms]
        parts += [F.lit(w) * xs[c] for c, w in linear]
        parts += [
            F.element_at(F.array(*[F.lit(float(e)) for e in effects[j]]), F.col(f"_ci{j}") + 1)
            for j in range(m)
        ]
        score = parts[0]
        for part in parts[1:]:
            score = score + part
        scores.append(score)
        n_terms += len(terms) + len(linear)
    logger.info(
        "classification: %d classes, %d numeric and %d categorical columns, %d score terms, "
        "label noise %.3f",
        k,
        d,
        m,
        n_terms,
        cfg.label_noise,
    )
    # argmax_k s_k: the largest (score, k) struct; a tie goes to the larger k.
    ranked = F.array(*[F.struct(s.alias("s"), F.lit(i).alias("k")) for i, s in enumerate(scores)])
    df = df.withColumn("_clean", F.array_max(ranked).getField("k"))
    label = F.col("_clean")
    if cfg.label_noise > 0:
        # A flipped label moves to one of the other k-1 classes, uniformly.
        shift = _uniform_int(seed, _NEW_CLASS, 0, k - 1) + 1
        flipped = F.pmod(label + shift, F.lit(k))
        label = F.when(_uniform(seed, _FLIP, 0) < F.lit(cfg.label_noise), flipped).otherwise(
            label
        )
    return df.select(
        "id",
        *x_names,
        *[F.concat(F.lit("v"), F.col(f"_ci{j}").cast("string")).alias(c) for j, c in enumerate(c_names)],
        label.cast("int").alias("label"),
    )


def _blobs(df: DataFrame, cfg: GenerateConfig, centers: np.ndarray) -> DataFrame:
    """Add x columns around known centres and the true cluster as label."""
    from pyspark.sql import functions as F

    d = cfg.numeric_features
    logger.info(
        "blobs: %d clusters in %d dimensions, std %.3f, centres in [-%g, %g]",
        cfg.clusters,
        d,
        cfg.cluster_std,
        cfg.center_box,
        cfg.center_box,
    )
    df = df.select("id", _uniform_int(cfg.seed, _CLUSTER, 0, cfg.clusters).alias("label"))
    pos = F.col("label") + 1
    xs = [
        (
            F.element_at(F.array(*[F.lit(float(c)) for c in centers[:, i]]), pos)
            + F.lit(float(cfg.cluster_std)) * z
        ).alias(f"x{i}")
        for i, z in enumerate(_normals(cfg.seed, d))
    ]
    return df.select("id", *xs, F.col("label").cast("int").alias("label"))


def generate_frame(spark: SparkSession, *, cfg: GenerateConfig) -> DataFrame:
    """Build the synthetic rows lazily, as Spark SQL expressions over ``spark.range``.

    Parameters
    ----------
    spark : SparkSession
        The session whose executors compute the rows.
    cfg : GenerateConfig
        The ``generate`` section. ``partitions`` (default: the default parallelism, or one per
        2 million rows when that is more) only changes the layout, never a value.

    Returns
    -------
    pyspark.sql.DataFrame
        ``kind: classification``: ``id`` (long), ``x0..x{d-1}`` (double, N(0, 1)),
        ``c0..c{m-1}`` (string ``"v0"..``), ``label`` (int, ``0..classes-1``).
        ``kind: blobs``: ``id``, ``x0..x{d-1}``, ``label`` (the true cluster).

    Raises
    ------
    ValueError
        When ``generate.seed`` is negative or does not fit a 64-bit long.

    Examples
    --------
    >>> from dataclasses import replace
    >>> df = generate_frame(spark, cfg=replace(GenerateConfig(), rows=10))  # doctest: +SKIP
    >>> df.columns  # doctest: +SKIP
    ['id', 'x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'c0', 'c1', 'label']
    """
    _check(cfg)
    partitions = _partitions(spark, cfg)
    logger.info(
        "generating %d %s rows in %d partitions (seed %d)",
        cfg.rows,
        cfg.kind,
        partitions,
        cfg.seed,
    )
    base = spark.range(cfg.rows, numPartitions=partitions)
    if cfg.kind == "blobs":
        return _blobs(base, cfg, blob_centers(cfg))
    return _classification(base, cfg)


def write_generated(spark: SparkSession, *, cfg: GenerateConfig) -> GenerateResult:
    """Generate the rows on the executors and write them to ``cfg.output``.

    CSV gets a header line; Parquet is snappy-compressed. For ``kind: blobs`` the true centres
    also go to ``<output>/centers.json`` (``seed``, ``clusters``, ``dim``, ``centers``), written
    through Hadoop's FileSystem API so ``hdfs://`` and ``s3a://`` outputs work. Nothing is
    collected to the driver.

    ``centers.json`` is one line, so a CSV reader with ``header=True`` takes it for a header
    and reads no rows from it; Spark's Parquet reader does not skip it, so read blobs Parquet
    with ``.option("pathGlobFilter", "*.parquet")``.

    Parameters
    ----------
    spark : SparkSession
        The session to run on.
    cfg : GenerateConfig
        The ``generate`` section.

    Returns
    -------
    GenerateResult
        Output path, format, row count, partitions, columns, wall seconds and (blobs) centres.

    Raises
    ------
    ValueError
        When ``cfg.output`` exists and ``generate.overwrite`` is false, or for a bad seed.

    Examples
    --------
    >>> from dataclasses import replace
    >>> cfg = replace(GenerateConfig(), rows=1000, output="/tmp/g", format="parquet")
    >>> write_generated(spark, cfg=cfg).rows  # doctest: +SKIP
    1000
    """
    started = time.perf_counter()
    fs, path = _hadoop_path(spark, cfg.output)
    if not cfg.overwrite and fs.exists(path):
        raise ValueError(
            f"generate.output {cfg.output} already exists and generate.overwrite is false; "
            "remove it, choose another generate.output, or pass --set generate.overwrite=true"
        )
    df = generate_frame(spark, cfg=cfg)
    partitions = df.rdd.getNumPartitions()
    writer = df.write.mode("overwrite" if cfg.overwrite else "errorifexists")
    if cfg.format == "csv":
        writer.option("header", True).csv(cfg.output)
    else:
        writer.option("compression", "snappy").parquet(cfg.output)
    centers = None
    if cfg.kind == "blobs":
        array = blob_centers(cfg)
        centers = tuple(tuple(float(v) for v in row) for row in array)
        doc = {
            "seed": cfg.seed,
            "clusters": cfg.clusters,
            "dim": cfg.numeric_features,
            "centers": [list(row) for row in centers],
        }
        written = _write_small_file(spark, cfg.output, CENTERS_FILE, json.dumps(doc) + "\n")
        logger.info("wrote %d blob centres to %s", cfg.clusters, written)
    seconds = time.perf_counter() - started
    logger.info("wrote %d rows as %s to %s in %.1f s", cfg.rows, cfg.format, cfg.output, seconds)
    return GenerateResult(
        output=cfg.output,
        format=cfg.format,
        kind=cfg.kind,
        rows=cfg.rows,
        partitions=partitions,
        columns=tuple(df.columns),
        seconds=seconds,
        centers=centers,
    )


__all__ = ["CENTERS_FILE", "GenerateResult", "blob_centers", "generate_frame", "write_generated"]
