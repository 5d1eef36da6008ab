"""The plan's prediction for one training run: logged before it, kept in its ``metrics.json``.

Before the stage starts, the driver predicts the run from the compute calibration of its model
(measured once per machine, stack, model and batch size: a few seconds, then cached), the
link calibration when one is cached (else :data:`~sparkdl.plan.planner.DEFAULT_LINK`, which it
says), and the input as free (prefetched). After the run, ``metrics.json``'s ``plan`` holds
the prediction beside the measured epoch time, so every run checks the model.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from typing import Any

logger = logging.getLogger(__name__)


def predict_run(
    *,
    train: Any,
    workers: int,
    threads: int,
    input_dim: int,
    num_classes: int,
    train_rows: int,
    validation_rows: int,
    model_fn: Any = None,
    ranks_per_host: int = 1,
    launch_env: dict[str, str] | None = None,
    spark: Any = None,
) -> dict[str, Any] | None:
    """The prediction for this run as plain values (None when ``train.predict`` is off or the
    calibration failed: the run goes on, and the log says why). ``spark`` runs a calibration
    of ranks sharing a host as a barrier stage.

    Raises
    ------
    BadInputError
        When the calibration's ranks could not build the model: the run's ranks would fail
        the same way, so it ends here.
    RunInterruptedError
        On SIGINT or SIGTERM during the calibration.
    """
    from sparkdl.errors import BadInputError, RunInterruptedError, SparkdlError
    from sparkdl.plan.model import Job, predict
    from sparkdl.plan.planner import DEFAULT_LINK, compute_calibration, link_calibration, mode_of

    if not train.predict:
        return None
    try:
        got = compute_calibration(
            train,
            input_dim=input_dim,
            num_classes=num_classes,
            threads=threads,
            model_fn=model_fn,
            ranks_per_host=ranks_per_host,
            launch_env=launch_env,
            spark=spark,
        )
    except (BadInputError, RunInterruptedError):
        raise
    except (SparkdlError, OSError) as exc:
        logger.warning("no plan for this run: the compute calibration failed (%s)", exc)
        return None
    if got is None:
        return None
    compute, rates, shapes, device = got
    links = link_calibration(None, network="host", measure=False)
    link = links.get("allreduce", DEFAULT_LINK)
    job = Job(
        train_rows=train_rows,
        validation_rows=validation_rows,
        epochs=train.epochs,
        workers=workers,
        cores_per_worker=threads,
        link=link,
    )
    p = predict(shapes=shapes, mode=mode_of(train), compute=compute, rates=rates, job=job)
    logger.info(
        "plan: %s on %d worker(s): %.2f ms per step (compute %.2f, compress %.2f, comm %.2f), "
        "%d steps, %.2f s per epoch, %.1f s for %d epochs (link %s; compute on %s)",
        p.mode,
        workers,
        1000 * p.step_s,
        1000 * p.compute_s,
        1000 * p.compress_s,
        1000 * p.comm_s,
        p.steps_per_epoch,
        p.epoch_s,
        p.total_s,
        train.epochs,
        "measured" if links else "not measured: 10 Gbit/s and 50 us assumed",
        device,
    )
    return {
        **dataclasses.asdict(p),
        "link_measured": bool(links),
        "link": dataclasses.asdict(link),
        "device": device,
    }


def plan_record(
    predicted: dict[str, Any] | None, history: list[dict[str, float]]
) -> dict[str, Any]:
    """``metrics.json``'s ``plan``: the prediction, the measured epoch time (median of epochs
    2 on, whose first holds tracing) and their ratio.

    Examples
    --------
    >>> plan_record({"epoch_s": 2.0}, [{"wall_seconds": 9.0}, {"wall_seconds": 2.5}])["ratio"]
    1.25
    """
    if not predicted:
        return {"predicted": None}
    seconds = [float(h["wall_seconds"]) for h in history if "wall_seconds" in h]
    measured = statistics.median(seconds[1:] or seconds) if seconds else None
    ratio = measured / predicted["epoch_s"] if measured and predicted["epoch_s"] else None
    return {"predicted": predicted, "measured_epoch_s": measured, "ratio": ratio}
