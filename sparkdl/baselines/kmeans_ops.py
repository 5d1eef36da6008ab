"""Numpy kernels of k-means: assignment, partial sums, k-means|| sampling, k-means++.

Distances use the matrix-product form ``|x|^2 - 2 x.c + |c|^2`` (one BLAS call per block).
Everything here is numpy (plus one small numba-compiled row scan) and runs inside Spark tasks
or on the driver on model-sized data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np


def sq_distances(x: Any, centers: Any) -> Any:
    """Squared Euclidean distances ``[n, k]`` between rows of ``x`` and ``centers``.

    Examples
    --------
    >>> sq_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])).ravel().tolist()
    [0.0, 25.0]
    """
    x_sq = np.einsum("ij,ij->i", x, x)
    c_sq = np.einsum("ij,ij->i", centers, centers)
    d = x_sq[:, None] - 2.0 * (x @ centers.T) + c_sq[None, :]
    return np.maximum(d, 0.0)


_CHUNK = 4096


@functools.cache
def _scan_kernel() -> Any:
    """The compiled row scan (numba, compiled on first use in each process)."""
    from numba import njit

    @njit(nogil=True, cache=False)
    def scan(s, xsq, x, bounds, idx, dist, sums, counts, costs, accumulate):  # type: ignore[no-untyped-def]
        # s[i, j] = |c_j|^2 - 2 x_i.c_j over the centres of every run side by side (run r owns
        # columns bounds[r]:bounds[r + 1]); one pass: each run's argmin, distance, and (for
        # Lloyd) the per-centre sums and counts, accumulated in float64.
        n = s.shape[0]
        runs = len(bounds) - 1
        for i in range(n):
            for r in range(runs):
                lo, hi = bounds[r], bounds[r + 1]
                best = s[i, lo]
                bj = lo
                for j in range(lo + 1, hi):
                    if s[i, j] < best:
                        best = s[i, j]
                        bj = j
                d = best + xsq[i]
                if d < 0:
                    d = 0
                idx[i, r] = bj - lo
                dist[i, r] = d
                costs[r] += d
                if accumulate:
                    counts[bj] += 1
                    for t in range(x.shape[1]):
                        sums[bj, t] += x[i, t]

    return scan


def _nearest(
    x: Any, center_sets: Sequence[Any], *, accumulate: bool
) -> tuple[Any, Any, Any, Any, Any]:
    """Chunked BLAS scores against every centre set at once, then the compiled scan.

    Returns per-run nearest indices and distances ``[n, runs]``, the sums and counts of the
    concatenated centres (empty without ``accumulate``) and each run's cost.
    """
    scan = _scan_kernel()
    c = np.concatenate([np.asarray(cs, dtype=x.dtype) for cs in center_sets])
    bounds = np.cumsum([0] + [len(cs) for cs in center_sets]).astype(np.intp)
    m = np.ascontiguousarray(-2.0 * c.T, dtype=x.dtype)
    c_sq = np.einsum("ij,ij->i", c, c)
    n, runs, (k, dim) = len(x), len(center_sets), c.shape
    idx = np.empty((n, runs), dtype=np.intp)
    dist = np.empty((n, runs), dtype=x.dtype)
    sums = np.zeros((k, dim) if accumulate else (0, 0), dtype=np.float64)
    counts = np.zeros(k if accumulate else 0, dtype=np.int64)
    costs = np.zeros(runs, dtype=np.float64)
    x_sq = np.einsum("ij,ij->i", x, x)
    for lo in range(0, n, _CHUNK):
        hi = lo + _CHUNK
        s = x[lo:hi] @ m
        s += c_sq
        scan(
            s,
            x_sq[lo:hi],
            x[lo:hi],
            bounds,
            idx[lo:hi],
            dist[lo:hi],
            sums,
            counts,
            costs,
            accumulate,
        )
    return idx, dist, sums, counts, costs


def assign(x: Any, centers: Any) -> tuple[Any, Any]:
    """Nearest centre of each row and its squared distance, computed in ``x``'s precision.

    ``|x|^2`` does not change which centre is nearest, so the argmin runs on
    ``|c|^2 - 2 x.c`` (one BLAS matrix product per cache-sized chunk, then a compiled scan of
    the chunk's rows) and ``|x|^2`` is added to the minima only.

    Examples
    --------
    >>> idx, dist = assign(np.array([[0.0], [4.0]]), np.array([[1.0], [5.0]]))
    >>> idx.tolist(), dist.tolist()
    ([0, 1], [1.0, 1.0])
    """
    idx, dist = assign_runs(x, [centers])
    return idx[:, 0], dist[:, 0]


def assign_runs(x: Any, center_sets: Sequence[Any]) -> tuple[Any, Any]:
    """:func:`assign` against several centre sets (of any sizes) in one pass over ``x``:
    nearest index within each set and its squared distance, both ``[n, sets]``.

    Examples
    --------
    >>> idx, dist = assign_runs(np.array([[0.0], [4.0]]), [np.array([[1.0], [5.0]]),
    ...                                                    np.array([[3.0]])])
    >>> idx.tolist(), dist.tolist()
    ([[0, 0], [1, 0]], [[1.0, 9.0], [1.0, 1.0]])
    """
    x = np.ascontiguousarray(x)
    idx, dist, _, _, _ = _nearest(x, center_sets, accumulate=False)
    return idx, dist


def lloyd_sums(x: Any, centers: Any) -> dict[str, Any]:
    """Map side of one Lloyd iteration on one block: per-centre sums and counts, and cost.

    Assignment, sums and counts happen in one pass over the rows (sums and cost in float64).

    Examples
    --------
    >>> out = lloyd_sums(np.array([[0.0], [1.0], [10.0]]), np.array([[0.0], [9.0]]))
    >>> out["sums"].ravel().tolist(), out["counts"].tolist(), out["cost"]
    ([1.0, 10.0], [2, 1], 2.0)
    """
    out = lloyd_sums_runs(x, np.asarray(centers)[None])
    return {"sums": out["sums"][0], "counts": out["counts"][0], "cost": float(out["cost"][0])}


def lloyd_sums_runs(x: Any, centers: Any) -> dict[str, Any]:
    """:func:`lloyd_sums` for ``runs`` centre sets ``[runs, k, dim]`` in one pass over ``x``:
    sums ``[runs, k, dim]``, counts ``[runs, k]`` and costs ``[runs]``.

    Examples
    --------
    >>> out = lloyd_sums_runs(np.array([[0.0], [1.0], [10.0]]), np.array([[[0.0], [9.0]],
    ...                                                                  [[1.0], [2.0]]]))
    >>> out["counts"].tolist(), out["cost"].tolist()
    ([[2, 1], [2, 1]], [2.0, 65.0])
    """
    x = np.ascontiguousarray(x)
    runs, k, dim = np.shape(centers)
    _, _, sums, counts, costs = _nearest(x, list(centers), accumulate=True)
    return {"sums": sums.reshape(runs, k, dim), "counts": counts.reshape(runs, k), "cost": costs}


def farthest(x: Any, centers: Any, m: int) -> dict[str, Any]:
    """The ``m`` rows farthest from their nearest centre (to re-seed empty clusters)."""
    _, dist = assign(x, centers)
    return _top(x, dist, m)


def farthest_runs(x: Any, center_sets: Sequence[Any], wanted: Sequence[int]) -> list[Any]:
    """:func:`farthest` for several centre sets in one pass; ``None`` where ``wanted`` is 0."""
    if not any(wanted):
        return [None] * len(wanted)
    _, dist = assign_runs(x, center_sets)
    return [_top(x, dist[:, r], m) if m else None for r, m in enumerate(wanted)]


def _top(x: Any, dist: Any, m: int) -> dict[str, Any]:
    top = np.argpartition(dist, len(dist) - m)[-m:] if 0 < m < len(dist) else np.arange(len(dist))
    return {"far_points": x[top].astype(np.float64), "far_dist": dist[top].astype(np.float64)}


def merge_far(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Keep the farthest points of two :func:`farthest` results."""
    m = max(len(a["far_dist"]), len(b["far_dist"]))
    dist = np.concatenate([a["far_dist"], b["far_dist"]])
    points = np.concatenate([a["far_points"], b["far_points"]])
    top = np.argsort(dist, kind="stable")[-m:]
    return {"far_points": points[top], "far_dist": dist[top]}


def merge_sums(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Reduce side: add two partial results."""
    return {
        "sums": a["sums"] + b["sums"],
        "counts": a["counts"] + b["counts"],
        "cost": a["cost"] + b["cost"],
    }


def update_centers(centers: Any, total: dict[str, Any], far: dict[str, Any] | None = None) -> Any:
    """New centres from reduced sums; an empty cluster takes one of the farthest points
    (``far``, from :func:`farthest`), the farthest first. An empty cluster with no point
    offered keeps its centre."""
    counts = total["counts"]
    new = centers.astype(np.float64).copy()
    filled = counts > 0
    new[filled] = total["sums"][filled] / counts[filled, None]
    if far is not None:
        order = np.argsort(far["far_dist"], kind="stable")[::-1]
        for j, c in zip(np.flatnonzero(~filled), order, strict=False):
            new[j] = far["far_points"][c]
    return new


def kmeans_pp(points: Any, weights: Any, k: int, rng: np.random.Generator) -> Any:
    """Weighted k-means++ seeding on (few) candidate points; returns ``k`` centres.

    Examples
    --------
    >>> pts = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> c = kmeans_pp(pts, np.ones(4), 2, np.random.default_rng(0))
    >>> sorted(round(float(v)) for v in c.ravel())
    [0, 10]
    """
    n = len(points)
    if n <= k:
        extra = rng.choice(n, size=k - n, replace=True) if k > n else np.array([], dtype=int)
        return np.concatenate([points, points[extra]]).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)
    first = rng.choice(n, p=w / w.sum())
    centers = [points[first]]
    best = sq_distances(points, points[first : first + 1])[:, 0]
    for _ in range(1, k):
        p = w * best
        total = p.sum()
        nxt = rng.choice(n, p=p / total) if total > 0 else rng.choice(n)
        centers.append(points[nxt])
        best = np.minimum(best, sq_distances(points, points[nxt : nxt + 1])[:, 0])
    return np.asarray(centers, dtype=np.float64)


def contingency(pred: Any, labels: Any, k: int, classes: int) -> Any:
    """Counts of (cluster, label) pairs, ``[k, classes]``."""
    return np.bincount(pred * classes + labels, minlength=k * classes).reshape(k, classes)


def _comb2(n: Any) -> Any:
    return n * (n - 1) / 2.0


def adjusted_rand_index(table: Any) -> float:
    """ARI from a contingency table (Hubert and Arabie 1985).

    Examples
    --------
    >>> adjusted_rand_index(np.array([[2, 0], [0, 2]]))
    1.0
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()
    index = _comb2(t).sum()
    a, b = _comb2(t.sum(axis=1)).sum(), _comb2(t.sum(axis=0)).sum()
    expected = a * b / _comb2(n) if n > 1 else 0.0
    top = (a + b) / 2.0
    if top == expected:
        return 1.0
    return float((index - expected) / (top - expected))


def normalized_mutual_info(table: Any) -> float:
    """NMI with arithmetic-mean normalisation (scikit-learn's default) from a contingency table.

    Examples
    --------
    >>> round(normalized_mutual_info(np.array([[2, 0], [0, 2]])), 6)
    1.0
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()
    pi, pj = t.sum(axis=1) / n, t.sum(axis=0) / n
    nz = t > 0
    pij = t[nz] / n
    outer = np.outer(pi, pj)[nz]
    mi = float(np.sum(pij * np.log(pij / outer)))

    def entropy(p: Any) -> float:
        p = p[p > 0]
        return float(-np.sum(p * np.log(p)))

    hi, hj = entropy(pi), entropy(pj)
    if hi == 0.0 and hj == 0.0:
        return 1.0
    denom = (hi + hj) / 2.0
    return max(mi, 0.0) / denom if denom > 0 else 0.0
