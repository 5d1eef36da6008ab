"""Numpy kernels of the baselines against references: finite differences, scikit-learn, brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from sparkdl.baselines import kmeans_ops as ops
from sparkdl.baselines import linear
from sparkdl.baselines.blocks import plan_slices


@pytest.mark.parametrize(("kind", "classes"), [("logistic", 2), ("softmax", 4), ("linear", 1)])
def test_gradient_matches_finite_differences(kind: str, classes: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    y = rng.normal(size=20) if kind == "linear" else rng.integers(0, classes, size=20)
    w = linear.Weights(
        rng.normal(size=(3, linear.outputs(kind, classes))),
        rng.normal(size=linear.outputs(kind, classes)),
    )
    l2 = 0.1

    def objective(wv: linear.Weights) -> float:
        return linear.gradient(kind, wv, x, y, 0.0)[2] / len(y) + l2 / 2 * float(np.sum(wv.W**2))

    gw, gb, _ = linear.gradient(kind, w, x, y, l2)
    eps = 1e-6
    for idx in np.ndindex(w.W.shape):
        hi, lo = w.copy(), w.copy()
        hi.W[idx] += eps
        lo.W[idx] -= eps
        assert gw[idx] == pytest.approx(
            (objective(hi) - objective(lo)) / (2 * eps), rel=1e-4, abs=1e-7
        )
    for j in range(len(w.b)):
        hi, lo = w.copy(), w.copy()
        hi.b[j] += eps
        lo.b[j] -= eps
        assert gb[j] == pytest.approx(
            (objective(hi) - objective(lo)) / (2 * eps), rel=1e-4, abs=1e-7
        )


def test_sgd_epoch_is_deterministic_and_learns() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    runs = []
    for _ in range(2):
        w = linear.Weights.zeros(5, 1)
        for epoch in range(3):
            linear.sgd_epoch(
                "logistic",
                w,
                x,
                y,
                lr=0.5,
                l2=0.0,
                batch_size=32,
                rng=np.random.default_rng([3, epoch]),
            )
        runs.append(w)
    np.testing.assert_array_equal(runs[0].W, runs[1].W)
    metrics = linear.finish_metrics("logistic", linear.score_sums("logistic", runs[0], x, y))
    assert metrics["accuracy"] > 0.97


def test_resolve_kind_refuses_mismatches() -> None:
    assert linear.resolve_kind("auto", task="regression", num_classes=1) == "linear"
    with pytest.raises(ValueError, match="10 classes; use softmax"):
        linear.resolve_kind("logistic", task="classification", num_classes=10)
    with pytest.raises(ValueError, match="classification task"):
        linear.resolve_kind("linear", task="classification", num_classes=2)


def test_ari_and_nmi_match_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    for _ in range(5):
        truth = rng.integers(0, 4, size=300)
        pred = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, size=300))
        table = ops.contingency(pred, truth, 5, 4)
        assert ops.adjusted_rand_index(table) == pytest.approx(
            adjusted_rand_score(truth, pred), abs=1e-12
        )
        assert ops.normalized_mutual_info(table) == pytest.approx(
            normalized_mutual_info_score(truth, pred), abs=1e-12
        )


def test_lloyd_sums_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4))
    centers = rng.normal(size=(6, 4))
    out = ops.lloyd_sums(x, centers)
    dist = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    idx = dist.argmin(1)
    for j in range(6):
        np.testing.assert_allclose(out["sums"][j], x[idx == j].sum(0), atol=1e-9)
    np.testing.assert_array_equal(out["counts"], np.bincount(idx, minlength=6))
    assert out["cost"] == pytest.approx(dist.min(1).sum())
    far = ops.merge_far(ops.farthest(x[:250], centers, 3), ops.farthest(x[250:], centers, 3))
    np.testing.assert_allclose(np.sort(far["far_dist"]), np.sort(dist.min(1))[-3:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_scan_over_many_chunks_matches_brute_force(dtype: type) -> None:
    # 10,001 rows: two full 4,096-row chunks and a ragged one; Fortran order is made contiguous
    rng = np.random.default_rng(11)
    x = np.asfortranarray(rng.normal(size=(10_001, 5)).astype(dtype))
    centers = rng.normal(size=(7, 5))
    x64 = x.astype(np.float64)
    dist = ((x64[:, None, :] - centers[None]) ** 2).sum(-1)
    idx, best = ops.assign(x, centers)
    assert best.dtype == dtype
    # float32 scores may flip near-ties; they must then be ties to float32 precision
    flipped = idx != dist.argmin(1)
    assert flipped.mean() < 1e-3
    np.testing.assert_allclose(dist[np.arange(len(x)), idx], dist.min(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(best, dist.min(1), rtol=1e-4, atol=1e-4)
    out = ops.lloyd_sums(x, centers)
    assert out["sums"].dtype == np.float64
    np.testing.assert_array_equal(out["counts"], np.bincount(idx, minlength=7))
    for j in range(7):
        np.testing.assert_allclose(out["sums"][j], x64[idx == j].sum(0), rtol=1e-9, atol=1e-9)
    assert out["cost"] == pytest.approx(dist.min(1).sum(), rel=1e-5)


def test_empty_cluster_takes_the_farthest_point() -> None:
    x = np.array([[0.0], [0.2], [9.0]])
    centers = np.array([[0.1], [100.0], [9.0]])  # centre 1 attracts nothing
    total = ops.merge_sums(ops.lloyd_sums(x[:2], centers), ops.lloyd_sums(x[2:], centers))
    far = ops.merge_far(ops.farthest(x[:2], centers, 1), ops.farthest(x[2:], centers, 1))
    new = ops.update_centers(centers, total, far)
    assert new[1, 0] in (0.0, 0.2)  # one of the rows 0.1 away from centre 0, the farthest ones
    assert new[0, 0] == pytest.approx(0.1) and new[2, 0] == 9.0


def test_plan_slices_covers_every_row_once() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        files = [
            (f"f{i}", int(r)) for i, r in enumerate(rng.integers(1, 50, size=rng.integers(1, 6)))
        ]
        total = sum(r for _, r in files)
        parts = int(rng.integers(1, total + 1))
        plan = plan_slices(files, parts)
        covered = {(s.path, row) for p in plan for s in p for row in range(s.start, s.stop)}
        assert len(covered) == total == sum(s.stop - s.start for p in plan for s in p)
        sizes = [sum(s.stop - s.start for s in p) for p in plan]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="at least one row"):
        plan_slices([("a", 2)], 3)


def test_one_pass_for_several_centre_sets_equals_one_pass_each() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9_000, 3))  # three 4,096-row chunks
    sets = [rng.normal(size=(k, 3)) for k in (4, 1, 6)]
    idx, dist = ops.assign_runs(x, sets)
    for r, c in enumerate(sets):
        one_idx, one_dist = ops.assign(x, c)
        np.testing.assert_array_equal(idx[:, r], one_idx)
        np.testing.assert_allclose(dist[:, r], one_dist, rtol=1e-12, atol=1e-12)
    stack = np.stack([rng.normal(size=(5, 3)) for _ in range(3)])
    out = ops.lloyd_sums_runs(x, stack)
    assert out["sums"].shape == (3, 5, 3) and out["counts"].shape == (3, 5)
    for r in range(3):
        one = ops.lloyd_sums(x, stack[r])
        np.testing.assert_allclose(out["sums"][r], one["sums"], rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(out["counts"][r], one["counts"])
        assert out["cost"][r] == pytest.approx(one["cost"], rel=1e-12)
    far = ops.farthest_runs(x, list(stack), [2, 0, 1])
    assert far[1] is None and len(far[0]["far_dist"]) == 2 and len(far[2]["far_dist"]) == 1
    np.testing.assert_allclose(far[2]["far_dist"], ops.farthest(x, stack[2], 1)["far_dist"])


class _TwoBlocks:
    """The Engine protocol over two in-memory blocks (the barrier engine's merge: in order)."""

    partitions = 2

    def __init__(self, x: np.ndarray) -> None:
        from sparkdl.baselines.blocks import Block

        half = len(x) // 2
        self.blocks = [Block(0, x[:half], None, {}), Block(1, x[half:], None, {})]
        self.calls = 0

    def map_reduce(self, fn, arg, merge):  # type: ignore[no-untyped-def]
        from sparkdl.baselines.engine import fold

        self.calls += 1
        return fold([fn(b, arg) for b in self.blocks], merge)


def _blobs_and_starts(runs: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    truth = rng.normal(scale=6.0, size=(4, 2))
    x = np.concatenate([c + rng.normal(size=(500, 2)) for c in truth])
    # start 1 has two centres in one blob: a poor local optimum, clearly behind after 3 passes
    starts = [truth + rng.normal(scale=0.3, size=truth.shape) for _ in range(runs)]
    starts[1] = np.stack([truth[0], truth[0] + 0.1, truth[2], truth[3]])
    return x, starts


def test_restarts_race_by_halving_and_keep_the_start_that_wins_alone() -> None:
    from sparkdl.baselines.lloyd import lloyd
    from sparkdl.config.baselines import KMeansConfig

    x, starts = _blobs_and_starts(5)
    cfg = KMeansConfig(k=4, max_iter=30, tol=0.0)
    raced, passes = lloyd(_TwoBlocks(x), starts, cfg=cfg)
    alone, _ = lloyd(
        _TwoBlocks(x), starts, cfg=KMeansConfig(k=4, max_iter=30, tol=0.0, race_passes=0)
    )
    # 5 -> 3 after pass 3 (the poor start among the two that stop); the other three then
    # converge before the next rung at pass 6
    assert raced[1].raced_out == 3 and sorted(r.raced_out for r in raced) == [0, 0, 0, 3, 3]
    assert all(r.raced_out == 0 for r in alone) and passes < 6
    for r, a in zip(raced, alone, strict=True):
        # a run that lost stopped where it was; every path is the one it had alone
        assert r.costs == a.costs[: len(r.costs)]
        assert len(r.costs) == min(r.raced_out or len(a.costs), len(a.costs))
    best_raced = min(raced, key=lambda r: r.costs[-1])
    assert best_raced.costs[-1] == min(a.costs[-1] for a in alone)


def test_halving_keeps_the_cheaper_half_rounded_up_and_ignores_those_out() -> None:
    from sparkdl.baselines.lloyd import LloydRun, halve

    runs = [LloydRun(centers=None, costs=[c]) for c in (5.0, 1.0, 3.0, 2.0, 4.0)]
    halve(runs, passes=3)
    assert [r.raced_out for r in runs] == [3, 0, 0, 0, 3]
    halve(runs, passes=6)
    assert [r.raced_out for r in runs] == [3, 0, 6, 0, 3]
    halve(runs, passes=12)
    assert [r.raced_out for r in runs] == [3, 0, 6, 12, 3]
    halve(runs, passes=24)  # one left: the race is over
    assert [r.raced_out for r in runs] == [3, 0, 6, 12, 3]
