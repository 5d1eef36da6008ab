"""The run report: ``report.md``, ``report.json`` and PNG plots, from the steps' result files.

Which files those are comes from the run's state (each finished step's output record), not
from paths rebuilt here: a step that did not run, or ran elsewhere, is simply not reported. The
result files are read, and the report written, through the store (on the driver, Spark's Hadoop
file system): the plots are drawn into a temporary folder of the driver and then published.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkdl.baselines.compare import MLLIB_LOGISTIC, reference_row
from sparkdl.contract import to_plain
from sparkdl.files import json_bytes
from sparkdl.pipeline.outputs import EvaluateOutput, KmeansOutput, SgdOutput, TrainOutput
from sparkdl.pipeline.state import RunState, StepRecord
from sparkdl.store import Location, Store, parse_location
from sparkdl.store.arrow import ArrowStore

logger = logging.getLogger(__name__)

# opens the store of a location: HadoopStore on the driver (``lambda loc: HadoopStore(spark, loc)``)
StoreAt = Callable[[Location], Store]


def _read(path: str | None, store_at: StoreAt) -> dict[str, Any] | None:
    """A result file a step recorded (None when the step recorded none)."""
    if path is None:
        return None
    folder, name = parse_location(path).parent()
    try:
        return json.loads(store_at(folder).read_bytes(name))
    except FileNotFoundError:
        logger.warning("result file %s recorded in the run's state is missing; left out", path)
        return None


def _cost_curve(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """MLlib's cost per iteration from k-means' ``compare.json``, when it was measured."""
    curve = (doc or {}).get("mllib_cost_per_iteration")
    return {"cost_per_iteration": curve} if curve else None


def collect(state: RunState, *, store_at: StoreAt = ArrowStore) -> dict[str, Any]:
    """Every number the report shows, from the files the finished steps recorded.

    Examples
    --------
    >>> state = RunState.open(ArrowStore(run_dir), run_id="r", run_date="2026-11-22", config_hash="c")  # doctest: +SKIP
    >>> collect(state)["train"]  # doctest: +SKIP
    {'history': [...], ...}
    """
    train = state.output("train", TrainOutput)
    sgd = state.output("sgd", SgdOutput)
    kmeans = state.output("kmeans", KmeansOutput)
    evaluate = state.output("evaluate", EvaluateOutput)
    return {
        "run_id": state.run_id,
        "run_date": state.run_date,
        "steps": {step: to_plain(entry) for step, entry in state.steps.items()},
        "train": _read(train.metrics if train else None, store_at),
        "sgd": _read(sgd.metrics if sgd else None, store_at),
        "mllib_logistic": reference_row(
            _read(sgd.compare if sgd else None, store_at), MLLIB_LOGISTIC
        ),
        "kmeans": _read(kmeans.metrics if kmeans else None, store_at),
        "mllib_kmeans": _cost_curve(_read(kmeans.compare if kmeans else None, store_at)),
        "evaluate": _read(evaluate.metrics if evaluate else None, store_at),
    }


def _plots(data: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[str] = []
    train, sgd = data["train"], data["sgd"]
    if train and train.get("history"):
        hist = train["history"]
        epochs = [h["epoch"] + 1 for h in hist]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(epochs, [h.get(key) for h in hist], marker="o", label=f"train {key}")
            if any(f"val_{key}" in h for h in hist):
                ax.plot(
                    epochs,
                    [h.get(f"val_{key}") for h in hist],
                    marker="o",
                    label=f"validation {key}",
                )
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.legend()
        fig.suptitle("Horovod training curves")
        fig.tight_layout()
        fig.savefig(out / "training_curves.png", dpi=100)
        plt.close(fig)
        made.append("training_curves.png")
    if train or sgd:
        fig, ax = plt.subplots(figsize=(6, 4))
        if train and train.get("history"):
            elapsed, t = [], 0.0
            for h in train["history"]:
                t += h.get("seconds", 0.0)
                elapsed.append(t)
            ax.plot(
                elapsed,
                [h.get("val_accuracy") for h in train["history"]],
                marker="o",
                label="Horovod MLP (validation)",
            )
        if sgd and sgd.get("history"):
            ax.plot(
                [h["trained_s"] for h in sgd["history"]],
                [h.get("validation_accuracy", h.get("test_accuracy")) for h in sgd["history"]],
                marker="s",
                label="ParallelSGD (validation)",
            )
        mllib = data["mllib_logistic"]
        if mllib:
            ax.scatter(
                [mllib["wall_s"]],
                [mllib["accuracy"]],
                color="black",
                zorder=3,
                label="MLlib LogisticRegression (test)",
            )
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy against wall time")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_time.png", dpi=100)
        plt.close(fig)
        made.append("accuracy_vs_time.png")
    km = data["kmeans"]
    if km and km.get("cost_per_iteration"):
        fig, ax = plt.subplots(figsize=(6, 4))
        costs = km["cost_per_iteration"]
        # costs[i] is measured against the centres after i updates (costs[0]: the initial ones)
        ax.plot(range(len(costs)), costs, marker="o", label="sparkdl k-means")
        if data["mllib_kmeans"]:
            ref = data["mllib_kmeans"]["cost_per_iteration"]
            ax.plot(
                range(1, len(ref) + 1),
                ref,
                marker="x",
                linestyle="--",
                label="MLlib KMeans, same start",
            )
        ax.set_xlabel("Lloyd updates of the centres (0 = initial centres)")
        ax.set_ylabel("cost (sum of squared distances)")
        ax.set_title("k-means cost per iteration")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "kmeans_cost.png", dpi=100)
        plt.close(fig)
        made.append("kmeans_cost.png")
    if train and train.get("samples_per_s"):
        fig, ax = plt.subplots(figsize=(5, 4))
        per_worker = train["samples_per_s"] / max(1, train.get("workers", 1))
        ax.bar(
            [f"rank {r}" for r in range(train.get("workers", 1))],
            [per_worker] * train.get("workers", 1),
        )
        ax.set_ylabel("samples/s")
        ax.set_title(f"throughput per worker (total {train['samples_per_s']:,.0f} samples/s)")
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=100)
        plt.close(fig)
        made.append("throughput.png")
    return made


def _markdown(data: dict[str, Any], plots: list[str], steps: dict[str, StepRecord]) -> str:
    lines = [f"# sparkdl pipeline run {data['run_id']}", "", f"Run date: {data['run_date']}", ""]
    lines += ["## Steps", "", "| step | status | seconds | result |", "|---|---|---|---|"]
    for step, entry in steps.items():
        if step == "report":
            continue
        result = (entry.summary or entry.error or "").replace("|", "/").replace("\n", " ")
        lines.append(f"| {step} | {entry.status} | {entry.seconds or 0.0:.1f} | {result} |")
    lines += ["", "## Results", "", "| model | accuracy | log loss | wall s |", "|---|---|---|---|"]
    train, ev, sgd, mllib = data["train"], data["evaluate"], data["sgd"], data["mllib_logistic"]
    if ev:
        m = ev["metrics"]
        wall = train.get("wall_s", 0.0) if train else 0.0
        lines.append(
            f"| Horovod MLP (distributed evaluation, {ev['split']}) | {m.get('accuracy', float('nan')):.4f} | {m.get('log_loss', float('nan')):.4f} | {wall:.1f} |"
        )
    if sgd and sgd.get("test"):
        lines.append(
            f"| ParallelSGD {sgd['kind']} | {sgd['test'].get('accuracy', float('nan')):.4f} | {sgd['test'].get('log_loss', float('nan')):.4f} | {sgd['wall_s']:.1f} |"
        )
    if mllib:
        lines.append(
            f"| MLlib LogisticRegression | {mllib['accuracy']:.4f} | {mllib['log_loss']:.4f} | {mllib['wall_s']:.1f} |"
        )
    if ev and "roc_auc" in ev["metrics"]:
        lines += ["", f"ROC AUC of the Horovod model: {ev['metrics']['roc_auc']:.4f}"]
    if ev and "confusion_matrix" in ev["metrics"]:
        lines += ["", "Confusion matrix (rows: true label, columns: predicted):", ""]
        lines += [
            "    " + " ".join(f"{v:>8d}" for v in row) for row in ev["metrics"]["confusion_matrix"]
        ]
    km = data["kmeans"]
    if km:
        lines += ["", "## k-means", ""]
        lines.append(
            f"k={km['config']['k']}: {km['iterations']} iterations "
            f"({'converged' if km['converged'] else 'max_iter reached'}), "
            + ", ".join(f"{k} {v:.4g}" for k, v in km["metrics"].items())
            + f", {km['seconds_per_iteration'] * 1000:.1f} ms per iteration"
        )
    if train:
        lines += [
            "",
            "## Training",
            "",
            f"{train.get('workers')} Horovod ranks, {train.get('samples_per_s', 0):,.0f} samples/s, "
            f"{train.get('attempts')} attempt(s), weights identical on all ranks: "
            f"{train.get('weights_identical_on_all_ranks')}",
        ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(out: Store, *, state: RunState, store_at: StoreAt = ArrowStore) -> str:
    """Write the report (Markdown, JSON and plots) into ``out``, the run's ``report/`` folder,
    and return the Markdown's URI.

    Examples
    --------
    >>> write_report(ArrowStore(f"{run_dir}/report"), state=state)  # doctest: +SKIP
    'runs/pipeline/r/report/report.md'
    """
    data = collect(state, store_at=store_at)
    with tempfile.TemporaryDirectory(prefix="sparkdl-report-") as tmp:
        plots = _plots(data, Path(tmp))
        for name in plots:
            out.write_bytes(name, Path(tmp, name).read_bytes())
    out.write_bytes("report.json", json_bytes({**data, "plots": plots}))
    out.write_bytes("report.md", _markdown(data, plots, state.steps).encode())
    logger.info("report written to %s/report.md", out.uri)
    return f"{out.uri}/report.md"
