"""Vectorised numpy kernels of linear models: logistic, softmax and linear regression with L2.

Weights are ``W`` of shape ``[dim, outputs]`` and ``b`` of shape ``[outputs]``; logistic
regression has one output (the positive class's logit), softmax one per class, linear
regression one. Everything here is pure numpy and runs inside Spark tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkdl.errors import BadInputError

KINDS = ("logistic", "softmax", "linear")


def resolve_kind(kind: str, *, task: str, num_classes: int) -> str:
    """Pick the model for ``kind: auto`` and check an explicit one against the task.

    Examples
    --------
    >>> resolve_kind("auto", task="classification", num_classes=2)
    'logistic'
    >>> resolve_kind("auto", task="classification", num_classes=10)
    'softmax'
    """
    if kind == "auto":
        if task == "regression":
            return "linear"
        return "logistic" if num_classes == 2 else "softmax"
    if kind == "linear" and task != "regression":
        raise BadInputError(
            "sgd.model is 'linear' but the dataset is a classification task; use "
            "sgd.model=auto, logistic or softmax"
        )
    if kind in ("logistic", "softmax") and task == "regression":
        raise BadInputError(
            f"sgd.model is {kind!r} but the dataset is a regression task; use linear"
        )
    if kind == "logistic" and num_classes != 2:
        raise BadInputError(
            f"sgd.model is 'logistic' but the dataset has {num_classes} classes; use softmax"
        )
    return kind


def outputs(kind: str, num_classes: int) -> int:
    """Number of output columns of ``W``."""
    return num_classes if kind == "softmax" else 1


@dataclass
class Weights:
    """Model parameters (mutable: SGD updates them in place)."""

    W: Any
    b: Any

    @classmethod
    def zeros(cls, dim: int, out: int) -> Weights:
        """All-zero weights, the common starting point of every partition."""
        return cls(np.zeros((dim, out)), np.zeros(out))

    def copy(self) -> Weights:
        """An independent copy."""
        return Weights(self.W.copy(), self.b.copy())


def _softmax(z: Any) -> Any:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def gradient(kind: str, w: Weights, x: Any, y: Any, l2: float) -> tuple[Any, Any, float]:
    """Mean loss gradient of one mini-batch: ``(dW, db, summed loss)``.

    Examples
    --------
    >>> w = Weights.zeros(2, 1)
    >>> gw, gb, loss = gradient("logistic", w, np.array([[1.0, 0.0]]), np.array([1]), 0.0)
    >>> gw.ravel().tolist(), gb.tolist(), round(loss, 4)
    ([-0.5, 0.0], [-0.5], 0.6931)
    """
    n = len(y)
    z = x @ w.W + w.b
    if kind == "logistic":
        z = z[:, 0]
        p = 1.0 / (1.0 + np.exp(-z))
        err = (p - y)[:, None]
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z))
    elif kind == "softmax":
        p = _softmax(z)
        rows = np.arange(n)
        loss = float(-np.sum(np.log(np.maximum(p[rows, y], 1e-300))))
        p[rows, y] -= 1.0
        err = p
    else:
        err = z - y[:, None]
        loss = float(0.5 * np.sum(err**2))
    gw = x.T @ err / n + l2 * w.W
    gb = err.mean(axis=0)
    return gw, gb, loss


def sgd_epoch(
    kind: str,
    w: Weights,
    x: Any,
    y: Any,
    *,
    lr: float,
    l2: float,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass of mini-batch SGD over ``(x, y)`` in a random order; returns the summed loss.

    The block is permuted once (one copy), then consecutive slices are the mini-batches.
    """
    order = rng.permutation(len(y))
    xs, ys = x[order].astype(np.float64), y[order]
    total = 0.0
    for i in range(0, len(ys), batch_size):
        gw, gb, loss = gradient(kind, w, xs[i : i + batch_size], ys[i : i + batch_size], l2)
        w.W -= lr * gw
        w.b -= lr * gb
        total += loss
    return total


def score_sums(kind: str, w: Weights, x: Any, y: Any) -> dict[str, float]:
    """Additive evaluation sums of one block (rows, correct, log loss, squared error).

    Examples
    --------
    >>> w = Weights(np.array([[1.0]]), np.array([0.0]))
    >>> score_sums("logistic", w, np.array([[2.0], [-1.0]]), np.array([1, 1]))["correct"]
    1.0
    """
    z = x.astype(np.float64) @ w.W + w.b
    sums = {"rows": float(len(y))}
    if kind == "linear":
        err = z[:, 0] - y
        sums["sq_err"] = float(np.sum(err**2))
        sums["abs_err"] = float(np.sum(np.abs(err)))
        return sums
    if kind == "logistic":
        z1 = z[:, 0]
        pred = (z1 > 0).astype(np.int64)
        sums["log_loss"] = float(np.sum(np.logaddexp(0.0, z1) - y * z1))
    else:
        pred = z.argmax(axis=1)
        p = _softmax(z)
        sums["log_loss"] = float(-np.sum(np.log(np.maximum(p[np.arange(len(y)), y], 1e-15))))
    sums["correct"] = float(np.sum(pred == y))
    return sums


def finish_metrics(kind: str, sums: dict[str, float]) -> dict[str, float]:
    """Turn summed evaluation counts into metrics (accuracy and log loss, or RMSE and MAE)."""
    n = max(sums.get("rows", 0.0), 1.0)
    if kind == "linear":
        return {"rmse": float(np.sqrt(sums["sq_err"] / n)), "mae": sums["abs_err"] / n}
    return {"accuracy": sums["correct"] / n, "log_loss": sums["log_loss"] / n}


def predict(kind: str, w: Weights, x: Any) -> Any:
    """Class index (classification) or value (regression) for each row of ``x``."""
    z = x.astype(np.float64) @ w.W + w.b
    if kind == "linear":
        return z[:, 0]
    if kind == "logistic":
        return (z[:, 0] > 0).astype(np.int64)
    return z.argmax(axis=1)
