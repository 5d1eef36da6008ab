"""Prepared datasets for integration tests: generated rows through the real prepare job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def prepare_frame(spark: Any, tmp: Path, x: Any, y: Any, *, task: str, split: str) -> str:
    """Write features and labels as CSV and publish them with the real prepare job."""
    import numpy as np
    import pandas as pd

    from sparkdl.config import SparkdlConfig, load_config
    from sparkdl.data.prepare import run_prepare

    names = [f"f{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "id", np.arange(len(frame)))
    frame["label"] = y
    (tmp / "raw").mkdir(parents=True)
    frame.to_csv(tmp / "raw" / "data.csv", index=False)
    labels = sorted({str(v) for v in y}) if task == "classification" else ["0", "1"]
    cfg = load_config(
        SparkdlConfig,
        overrides=[
            f"prepare.input.path={tmp / 'raw'}",
            f"prepare.output={tmp / 'prepared'}",
            "prepare.columns.id=id",
            "prepare.columns.id_type=long",
            f"prepare.columns.task={task}",
            f"prepare.columns.label_values=[{', '.join(labels)}]",
            f"prepare.columns.numeric=[{', '.join(names)}]",
            f"prepare.split={split}",
            "prepare.layout.workers=2",
        ],
    )
    run_prepare(spark, cfg=cfg.prepare)
    return str(tmp / "prepared")


def prepare_sklearn_set(spark: Any, tmp: Path, loader: Any, *, split: str) -> str:
    """Publish a scikit-learn data set (``loader``, such as ``load_digits``) with ``split``."""
    data = loader()
    return prepare_frame(spark, tmp, data.data, data.target, task="classification", split=split)
