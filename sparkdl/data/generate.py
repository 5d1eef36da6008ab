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
from pyspark.sql import functions as sf

from sparkdl.config.data import GenerateConfig
from sparkdl.data.fs import HadoopFS
from sparkdl.errors import BadInputError

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
# A leading underscore makes Spark readers (and sparkdl prepare) skip the file as metadata.
CENTERS_FILE = "_centers.json"


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`write_generated` wrote.

    ``centers`` holds the true cluster centres for ``kind: blobs`` (None otherwise); they are
    also in ``<output>/_centers.json``.
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
        raise BadInputError(
            f"generate.seed is {cfg.seed}; use an integer in [0, 2**63), e.g. --set generate.seed=7"
        )


def _partitions(spark: SparkSession, cfg: GenerateConfig) -> int:
    """Return cfg.partitions, or enough partitions for the cores and ~2M rows each."""
    if cfg.partitions:
        return cfg.partitions
    return max(spark.sparkContext.defaultParallelism, math.ceil(cfg.rows / _ROWS_PER_PARTITION))


def _uniform(seed: int, family: int, index: int) -> Column:
    """A uniform in (0, 1) that depends only on (seed, family, index, id)."""
    h = sf.xxhash64(sf.lit(seed).cast("long"), sf.lit(family), sf.lit(index), sf.col("id"))
    return (sf.pmod(h, sf.lit(_TWO_52)) + sf.lit(0.5)) / sf.lit(float(_TWO_52))


def _uniform_int(seed: int, family: int, index: int, n: int) -> Column:
    """A uniform integer in [0, n)."""
    k = sf.floor(_uniform(seed, family, index) * sf.lit(float(n)))
    return sf.least(k, sf.lit(n - 1)).cast("int")


def _normals(seed: int, count: int) -> list[Column]:
    """``count`` independent N(0, 1) columns; pair j gives Box-Muller's cos and sin outputs."""
    out: list[Column] = []
    for j in range((count + 1) // 2):
        radius = sf.sqrt(sf.lit(-2.0) * sf.log(_uniform(seed, _NORMAL, 2 * j)))
        angle = sf.lit(2.0 * math.pi) * _uniform(seed, _NORMAL, 2 * j + 1)
        out.append(radius * sf.cos(angle))
        out.append(radius * sf.sin(angle))
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


def _draw_terms(rng: np.random.Generator, d: int) -> tuple[list[_Term], list[tuple[int, float]]]:
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
    weights = rng.normal(0.0, 0.25, size=len(cols))
    return terms, [(int(c), float(w)) for c, w in zip(cols, weights, strict=True)]


def _basis(term: _Term, xs: list[Column]) -> Column:
    """The zero-mean basis function of a term over standard-normal columns."""
    xa, xb = xs[term.a], xs[term.b]
    if term.basis == "sin":
        return sf.sin(xa * xb)
    if term.basis == "cross":
        return xa * xb
    if term.basis == "square":
        return xa * xa - sf.lit(1.0)
    if term.basis == "abs":
        return sf.abs(xa) - sf.lit(_HALF_NORMAL_MEAN)
    return sf.tanh(xa)


def _lookup(values: np.ndarray, index: Column) -> Column:
    """``values[index]`` for a 0-based int column, with the values as a constant array."""
    return sf.element_at(sf.array(*[sf.lit(float(v)) for v in values]), index + 1)


def _class_score(
    rng: np.random.Generator, xs: list[Column], cats: list[Column], n_cat: int
) -> Column:
    """Draw one class's score: nonlinear terms, weaker linear terms, per-category effects."""
    terms, linear = _draw_terms(rng, len(xs))
    effects = rng.normal(0.0, 0.5, size=(len(cats), n_cat))
    effects -= effects.mean(axis=1, keepdims=True)  # zero mean: no category tilts the balance
    parts = [sf.lit(t.weight) * _basis(t, xs) for t in terms]
    parts += [sf.lit(w) * xs[c] for c, w in linear]
    parts += [_lookup(row, ci) for row, ci in zip(effects, cats, strict=True)]
    return sum(parts[1:], start=parts[0])


def _classification(df: DataFrame, cfg: GenerateConfig) -> DataFrame:
    """Add x, c and label columns with a planted non-linear decision function."""
    d, m, n_cat, k = cfg.numeric_features, cfg.categorical_features, cfg.categories, cfg.classes
    seed = cfg.seed
    x_names = [f"x{i}" for i in range(d)]
    df = df.select(
        "id",
        *[z.alias(name) for z, name in zip(_normals(seed, d), x_names, strict=True)],
        *[_uniform_int(seed, _CATEGORY, j, n_cat).alias(f"_ci{j}") for j in range(m)],
    )
    rng = np.random.default_rng(seed)
    xs, cats = [sf.col(x) for x in x_names], [sf.col(f"_ci{j}") for j in range(m)]
    scores = [_class_score(rng, xs, cats, n_cat) for _ in range(k)]
    logger.info(
        "classification: %d classes, %d numeric, %d categorical, noise %g", k, d, m, cfg.label_noise
    )
    # argmax_k s_k: the largest (score, k) struct; a tie goes to the larger k.
    ranked = sf.array(
        *[sf.struct(s.alias("s"), sf.lit(i).alias("k")) for i, s in enumerate(scores)]
    )
    df = df.withColumn("_clean", sf.array_max(ranked).getField("k"))
    label = sf.col("_clean")
    if cfg.label_noise > 0:
        # A flipped label moves to one of the other k-1 classes, uniformly.
        shift = _uniform_int(seed, _NEW_CLASS, 0, k - 1) + 1
        flipped = sf.pmod(label + shift, sf.lit(k))
        noisy = _uniform(seed, _FLIP, 0) < sf.lit(cfg.label_noise)
        label = sf.when(noisy, flipped).otherwise(label)
    c_cols = [sf.concat(sf.lit("v"), ci.cast("string")).alias(f"c{j}") for j, ci in enumerate(cats)]
    return df.select("id", *x_names, *c_cols, label.cast("int").alias("label"))


def _blobs(df: DataFrame, cfg: GenerateConfig, centers: np.ndarray) -> DataFrame:
    """Add x columns around known centres and the true cluster as label."""
    d, std = cfg.numeric_features, cfg.cluster_std
    logger.info("blobs: %d clusters in %d dimensions, std %g", cfg.clusters, d, std)
    df = df.select("id", _uniform_int(cfg.seed, _CLUSTER, 0, cfg.clusters).alias("label"))
    label = sf.col("label")
    xs = [
        (_lookup(centers[:, i], label) + sf.lit(float(std)) * z).alias(f"x{i}")
        for i, z in enumerate(_normals(cfg.seed, d))
    ]
    return df.select("id", *xs, label)


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
        "generating %d %s rows (seed %d) in %d partitions", cfg.rows, cfg.kind, cfg.seed, partitions
    )
    base = spark.range(cfg.rows, numPartitions=partitions)
    if cfg.kind == "blobs":
        return _blobs(base, cfg, blob_centers(cfg))
    return _classification(base, cfg)


def write_generated(spark: SparkSession, *, cfg: GenerateConfig) -> GenerateResult:
    """Generate the rows on the executors and write them to ``cfg.output``.

    CSV gets a header line; Parquet is snappy-compressed. For ``kind: blobs`` the true centres
    also go to ``<output>/_centers.json`` (``seed``, ``clusters``, ``dim``, ``centers``), written
    through Hadoop's FileSystem API so ``hdfs://`` and ``s3a://`` outputs work. Nothing is
    collected to the driver.
    The leading underscore of ``_centers.json`` makes Spark's readers skip it.

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
    fs = HadoopFS(spark)
    if not cfg.overwrite and fs.exists(cfg.output):
        raise BadInputError(
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
        centers = tuple(tuple(float(v) for v in row) for row in blob_centers(cfg))
        doc: dict[str, Any] = {"seed": cfg.seed, "clusters": cfg.clusters}
        doc.update(dim=cfg.numeric_features, centers=[list(row) for row in centers])
        written = f"{cfg.output.rstrip('/')}/{CENTERS_FILE}"
        fs.write_text(written, json.dumps(doc) + "\n")
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
