"""Prepared datasets for integration tests: generated rows through the real prepare job."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def generate_and_prepare(
    spark: object, tmp: Path, *overrides: str, profiles: tuple[str, ...] = ("local.yaml",)
) -> str:
    """Generate data and prepare it under ``tmp`` with the repo's ``conf/`` profiles and
    ``overrides``; return the prepared dataset's path."""
    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.data.generate import write_generated
    from sparkdl.data.prepare import run_prepare

    cfg = load_config(
        SparkdlConfig,
        files=[REPO / "conf" / p for p in profiles],
        overrides=[
            f"generate.output={tmp / 'raw'}",
            f"prepare.input.path={tmp / 'raw'}",
            f"prepare.output={tmp / 'prepared'}",
            *overrides,
        ],
    )
    write_generated(spark, cfg=cfg.generate)
    run_prepare(spark, cfg=cfg.prepare)
    return str(tmp / "prepared")
