"""The prepare job: raw input to validated, featurized, split, published Parquet.

Spark jobs, in order: (1) read, tag defects, assign splits and stage every row partitioned by
status and split (the one full scan of the raw input); (2) count rows by status, split and
reason; (3) statistics and featurizer fit on the training split; (4) one write per split and a
verification read of each (count and content digest). Nothing but counts, statistics and the
fitted model reaches the driver.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkdl.config.data import PrepareConfig
from sparkdl.config.loader import to_dict
from sparkdl.data import publish as pub
from sparkdl.data.dataset import VERSIONS
from sparkdl.data.featurize import FEATURES, LABEL, apply_featurizer, fit_featurizer
from sparkdl.data.fs import HadoopFS
from sparkdl.data.layout import plan_layout, write_split
from sparkdl.data.manifest import (
    DatasetManifest,
    FeatureInfo,
    InputInfo,
    NumericStats,
    QuarantineInfo,
    RowCounts,
    SplitInfo,
    Statistics,
    read_manifest,
)
from sparkdl.data.sources import CORRUPT, SOURCE_FILE, read_raw
from sparkdl.data.split import KEY, SPLIT, SPLITS, assign_split
from sparkdl.data.validate import LABEL_INDEX, REASON, parse_valid, tag_defects
from sparkdl.data.verify import verify_split
from sparkdl.errors import BadInputError
from sparkdl.lock import output_lock

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

_STATUS = "_status"


class TooManyBadRows(BadInputError):  # noqa: N818 (reads as the condition it reports)
    """The quarantined fraction is above ``prepare.max_bad_fraction``."""


@dataclass(frozen=True)
class PrepareResult:
    """What a prepare run did."""

    root: str
    version: str
    skipped: bool
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    split_rows: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    declaration: str | None = None  # the inferred prepare.columns as YAML (columns.infer)


@contextmanager
def _timed(step: str, timings: dict[str, float]) -> Iterator[None]:
    """Time one step, log it, and keep it for the manifest."""
    start = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - start, 3)
    logger.info("prepare step %-10s %.1f s", step, timings[step])


def _counts(staged: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    from pyspark.sql import functions as F

    rows = staged.groupBy(_STATUS, SPLIT, REASON).agg(F.count(F.lit(1)).alias("n")).collect()
    by_split: dict[str, int] = dict.fromkeys(SPLITS, 0)
    by_reason: dict[str, int] = {}
    for r in rows:
        if r[_STATUS] == "valid":
            by_split[r[SPLIT]] += int(r["n"])
        else:
            by_reason[r[REASON]] = by_reason.get(r[REASON], 0) + int(r["n"])
    return by_split, by_reason


def _statistics(train: DataFrame, cfg: PrepareConfig) -> tuple[Statistics, dict[str, int]]:
    from pyspark.sql import functions as F

    cols = cfg.columns
    aggs = []
    for c in cols.numeric:
        x = F.col(f"`{c}`")
        aggs += [
            F.count(x).alias(f"{c}|count"),
            F.mean(x).alias(f"{c}|mean"),
            F.stddev(x).alias(f"{c}|std"),
            F.min(x).alias(f"{c}|min"),
            F.max(x).alias(f"{c}|max"),
        ]
    aggs += [
        F.approx_count_distinct(F.col(f"`{c}`")).alias(f"{c}|distinct") for c in cols.categorical
    ]
    aggs.append(F.count(F.lit(1)).alias("|rows"))
    if cols.task == "classification":
        aggs += [
            F.sum((F.col(LABEL_INDEX) == i).cast("long")).alias(f"|label{i}")
            for i in range(len(cols.label_values))
        ]
    row = train.agg(*aggs).first().asDict()
    rows = int(row["|rows"])
    label_counts = {
        str(i): int(row[f"|label{i}"] or 0)
        for i in range(len(cols.label_values))
        if cols.task == "classification"
    }
    numeric = {
        c: NumericStats(
            count=int(row[f"{c}|count"]),
            nulls=rows - int(row[f"{c}|count"]),
            **{k: _number(row[f"{c}|{k}"]) for k in ("mean", "std", "min", "max")},
        )
        for c in cols.numeric
    }
    distinct = {c: int(row[f"{c}|distinct"]) for c in cols.categorical}
    stats = Statistics(
        rows=rows,
        numeric=numeric,
        categorical_distinct_approx=distinct,
        train_label_counts=label_counts,
    )
    return stats, distinct


def _number(value: Any) -> float | None:
    """A statistic as a float (None stays None: a column without values)."""
    return None if value is None else float(value)


def _fail_on_bad_rows(
    fs: HadoopFS,
    root: str,
    staging: str,
    *,
    rows_in: int,
    bad: int,
    by_reason: dict[str, int],
    cfg: PrepareConfig,
) -> None:
    fraction = bad / rows_in if rows_in else 0.0
    if fraction <= cfg.max_bad_fraction:
        return
    kept = f"{root}/_rejected/{staging.rsplit('/', 1)[-1]}"
    fs.rename(f"{staging}/quarantine", kept)
    raise TooManyBadRows(
        f"{bad} of {rows_in} input rows ({fraction:.2%}) failed validation, above "
        f"prepare.max_bad_fraction={cfg.max_bad_fraction}; by reason: {by_reason}. The rejected "
        f"rows are in {kept} (Parquet with reason and source_file). Fix the input, or raise "
        "prepare.max_bad_fraction if these rows may be dropped. Nothing was published."
    )


def run_prepare(
    spark: SparkSession,
    *,
    cfg: PrepareConfig,
    force: bool = False,
    frame: DataFrame | None = None,
) -> PrepareResult:
    """Prepare and publish a dataset version; skip when the same input and config are published.

    Parameters
    ----------
    spark : SparkSession
    cfg : PrepareConfig
        The ``prepare`` config section.
    force : bool
        Rebuild even when this input and config are already published.
    frame : DataFrame, optional
        The rows to prepare, instead of ``cfg.input`` (which may also name a table or a SQL
        query): any DataFrame with the columns ``cfg.columns`` declares.

    Returns
    -------
    PrepareResult

    Raises
    ------
    ValueError
        Bad input: no files, columns that differ from ``prepare.columns`` (before any Spark
        job), a corrupt file, no valid rows, or more quarantined rows than
        ``prepare.max_bad_fraction`` (:class:`TooManyBadRows`). With ``prepare.columns.infer``,
        also what :func:`sparkdl.data.infer.infer_columns` refuses (a named column the input
        lacks, a missing label, too many classes), before any row is staged. Nothing is
        published then.
    OutputLockedError
        Another run is writing to ``prepare.output`` (its lock names it); nothing was changed.

    Examples
    --------
    >>> run_prepare(spark, cfg=config.prepare).split_rows  # doctest: +SKIP
    {'train': 80140, 'validation': 9911, 'test': 9949}
    """
    start = time.perf_counter()
    fs = HadoopFS(spark)
    root = fs.qualify(cfg.output).rstrip("/")
    with output_lock(root, what="prepare.output", spark=spark):
        return _prepare_locked(
            spark, fs=fs, root=root, cfg=cfg, force=force, start=start, frame=frame
        )


def _prepare_locked(
    spark: SparkSession,
    *,
    fs: HadoopFS,
    root: str,
    cfg: PrepareConfig,
    force: bool,
    start: float,
    frame: DataFrame | None = None,
) -> PrepareResult:
    """Prepare and publish into ``root`` while holding its lock (so a staging folder left
    there is an interrupted run's, never a live one's)."""
    from pyspark.sql import functions as F

    inferred = None
    if cfg.columns.infer:
        from sparkdl.data.infer import infer_columns

        inferred = infer_columns(
            spark, source=cfg.input, columns=cfg.columns, inference=cfg.inference, frame=frame
        )
        cfg = dataclasses.replace(cfg, columns=inferred.columns)
    raw = read_raw(spark, source=cfg.input, columns=cfg.columns, frame=frame)
    settings = to_dict(cfg)
    settings.pop("output")
    # The declaration is what was prepared; the infer switch and its options only chose it. So
    # the same declaration, inferred or pasted into the config, keys the same version.
    settings.pop("inference")
    settings["columns"].pop("infer")
    chash = pub.config_hash(settings)
    key = pub.version_key(input_fingerprint=raw.fingerprint, config_digest=chash)
    existing = pub.find_published(fs, root, key)
    if existing and not force:
        manifest = read_manifest(fs, f"{root}/{VERSIONS}/{existing}")
        logger.info("%s already holds this input and config as %s; nothing to do", root, existing)
        return _result(root, existing, manifest, skipped=True, seconds=time.perf_counter() - start)

    pub.clean_staging(fs, root)
    staging = pub.new_staging(fs, root)
    timings: dict[str, float] = {}
    try:
        key_cols = [cfg.columns.id] if cfg.columns.id else [*cfg.columns.declared, CORRUPT]
        tagged = tag_defects(raw.frame, columns=cfg.columns, typed=raw.typed)
        staged_path = f"{staging}/_rows"
        with _timed("stage", timings):
            keyed = assign_split(tagged, key_columns=key_cols, split=cfg.split)
            bad_row = F.col(REASON).isNotNull()
            # Valid rows keep their parsed numbers; only quarantined rows need the raw text.
            raw_numbers = {*cfg.columns.numeric, cfg.columns.label} - set(cfg.columns.categorical)
            (
                keyed.select(
                    *[
                        F.when(bad_row, F.col(f"`{c}`")).alias(c)
                        if c in raw_numbers
                        else F.col(f"`{c}`")
                        for c in keyed.columns
                    ]
                )
                .withColumn(_STATUS, F.when(bad_row, "quarantine").otherwise("valid"))
                .write.partitionBy(_STATUS, SPLIT)
                .parquet(staged_path)
            )
        staged = spark.read.parquet(staged_path)
        with _timed("count", timings):
            split_rows, by_reason = _counts(staged)
        valid, bad = sum(split_rows.values()), sum(by_reason.values())
        rows_in = valid + bad
        logger.info("rows in %d: valid %d, quarantined %d %s", rows_in, valid, bad, by_reason or "")
        quarantine_cols = [
            c for c in [*raw.input_columns, CORRUPT, SOURCE_FILE, REASON] if c in staged.columns
        ]
        if bad:
            staged.where(F.col(_STATUS) == "quarantine").select(
                *[
                    F.col(f"`{c}`").cast("string") if c in raw.input_columns else F.col(c)
                    for c in quarantine_cols
                ]
            ).write.parquet(f"{staging}/quarantine")
        _fail_on_bad_rows(fs, root, staging, rows_in=rows_in, bad=bad, by_reason=by_reason, cfg=cfg)
        if split_rows["train"] == 0:
            raise BadInputError(
                f"no valid rows in the training split ({valid} valid rows in all); "
                "check the input or prepare.split.train"
            )

        def rows_of(split: str) -> DataFrame:
            part = staged.where((F.col(_STATUS) == "valid") & (F.col(SPLIT) == split))
            return parse_valid(part, columns=cfg.columns)

        with _timed("fit", timings):
            stats, distinct = _statistics(rows_of("train"), cfg)
            fitted = fit_featurizer(
                rows_of("train"),
                columns=cfg.columns,
                cfg=cfg.featurize,
                distinct=distinct,
                # the statistics pass counted them: no second pass for the empty-column check
                non_null={c: s.count for c, s in stats.numeric.items()},
                rows=stats.rows,
            )
            fitted.model.write().overwrite().save(f"{staging}/featurizer")

        keep = (KEY, *([cfg.columns.id] if cfg.columns.id else []))
        row_bytes = 4 * fitted.dim + 8 + (8 if cfg.columns.id else 0)
        splits: dict[str, SplitInfo] = {}
        for split in SPLITS:
            if split_rows[split] == 0:
                continue
            plan = plan_layout(rows=split_rows[split], row_bytes=row_bytes, cfg=cfg.layout)
            path = f"{staging}/{split}"
            with _timed(f"write {split}", timings):
                write_split(
                    apply_featurizer(rows_of(split), fitted=fitted, keep=keep), path=path, plan=plan
                )
            with _timed(f"verify {split}", timings):
                splits[split] = verify_split(
                    spark, fs, path, expected=split_rows[split], workers=cfg.layout.workers
                )
        fs.delete(staged_path)

        name = pub.version_name(key)
        out_schema = spark.read.parquet(f"{staging}/{next(iter(splits))}").schema
        manifest = DatasetManifest(
            version=name,
            version_key=key,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
            code_version=pub.code_version(),
            config_hash=chash,
            config=settings,
            input=InputInfo(
                path=raw.origin,
                format=raw.kind,
                files=len(raw.files),
                bytes=sum(f.size for f in raw.files),
                fingerprint=raw.fingerprint,
                columns=tuple(raw.input_columns),
            ),
            schema={f.name: f.dataType.simpleString() for f in out_schema.fields},
            task=cfg.columns.task,
            label_values=tuple(cfg.columns.label_values)
            if cfg.columns.task == "classification"
            else None,
            id_column=cfg.columns.id,
            features=FeatureInfo(
                column=FEATURES,
                label_column=LABEL,
                dim=fitted.dim,
                names=tuple(fitted.feature_names),
                encodings=dict(fitted.encodings),
            ),
            featurizer="featurizer",
            rows=RowCounts(input=rows_in, valid=valid, quarantined=bad),
            quarantine=QuarantineInfo(
                path="quarantine" if bad else None, rows=bad, by_reason=by_reason
            ),
            splits=splits,
            statistics=stats,
            layout=to_dict(cfg.layout),
            timings_s=timings,
            inferred=inferred.info if inferred else None,
        )
        pub.seal(fs, staging, manifest)
        pub.publish(fs, root=root, staging=staging, name=name, keep=cfg.keep_versions)
    except BaseException as exc:
        fs.delete(staging)
        bad_file = _failed_input_file(exc, raw.files)
        if bad_file is not None:
            raise BadInputError(
                f"cannot read input file {bad_file}: {_first_error_line(exc)}. The file is "
                "corrupt, truncated or does not match the others (CSV headers must be the same "
                "in every file). Remove or re-export it; nothing was published."
            ) from exc
        raise
    return _result(root, name, manifest, skipped=False, seconds=time.perf_counter() - start)


def _failed_input_file(exc: BaseException, files: tuple[Any, ...]) -> str | None:
    """Return the input file a failed Spark job names in its error, if any."""
    if isinstance(exc, ValueError | KeyboardInterrupt):
        return None
    text = str(exc)
    for f in files:
        bare = f.path.split(":", 1)[-1].lstrip("/")
        if f.path in text or bare in text:
            return f.path
    return None


def _first_error_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if "Exception" in line or "Error" in line:
            return line.strip()[:300]
    return type(exc).__name__


def _result(
    root: str, version: str, manifest: DatasetManifest, *, skipped: bool, seconds: float
) -> PrepareResult:
    return PrepareResult(
        root=root,
        version=version,
        skipped=skipped,
        rows_in=manifest.rows.input,
        rows_valid=manifest.rows.valid,
        rows_quarantined=manifest.rows.quarantined,
        split_rows={k: v.rows for k, v in manifest.splits.items()},
        digests={k: v.digest for k, v in manifest.splits.items()},
        seconds=seconds,
        declaration=manifest.inferred.declaration if manifest.inferred else None,
    )
