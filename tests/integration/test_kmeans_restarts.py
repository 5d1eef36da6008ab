"""k-means restarts (kmeans.n_init) on real data through real Spark: standardised iris, k=3,
ends within 1% of scikit-learn's best cost for every seed, the same on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparkdl.baselines import compare
from sparkdl.baselines.kmeans import KMeansResult, run_kmeans
from sparkdl.config.baselines import KMeansConfig
from sparkdl.data.dataset import open_dataset
from tests.integration.datasets import prepare_sklearn_set

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def iris(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Iris, standardised by prepare (its default featurizer), all rows in train."""
    from sklearn.datasets import load_iris

    split = "{train: 1.0, validation: 0.0, test: 0.0, salt: 1}"
    return prepare_sklearn_set(spark, tmp_path_factory.mktemp("iris"), load_iris, split=split)


def _kmeans(spark: Any, dataset: str, out: Path, **kw: Any) -> KMeansResult:
    cfg = KMeansConfig(dataset=dataset, output=str(out), k=3, max_iter=100, **kw)
    return run_kmeans(spark, cfg=cfg)


def test_iris_reaches_sklearns_best_cost_for_every_seed(
    spark: Any, iris: str, tmp_path: Path
) -> None:
    best = compare.sklearn_kmeans_best(
        open_dataset(spark, iris), "train", k=3, n_init=10, seed=0, threads=2
    )["cost"]
    # with one initialisation (the code before kmeans.n_init) seed 1 ends at cost 190, 1.37 x
    # scikit-learn's 139 (ARI 0.43)
    for seed in (1, 2, 3, 4, 5):
        r = _kmeans(spark, iris, tmp_path / str(seed), seed=seed)
        assert r.n_init == 10 and len(r.final_costs) == 10
        assert r.metrics["cost"] <= 1.01 * best, (seed, r.metrics, best)
        assert r.metrics["cost"] == min(r.final_costs) == r.final_costs[r.best_init]
        assert r.metrics["ari"] > 0.6, r.metrics


def test_restarts_are_deterministic_and_equal_on_both_engines(
    spark: Any, iris: str, tmp_path: Path
) -> None:
    barrier = _kmeans(spark, iris, tmp_path / "barrier", seed=7, n_init=4)
    again = _kmeans(spark, iris, tmp_path / "again", seed=7, n_init=4)
    jobs = _kmeans(spark, iris, tmp_path / "jobs", seed=7, n_init=4, engine="jobs")
    for other in (again, jobs):
        np.testing.assert_array_equal(barrier.centers, other.centers)
        assert other.final_costs == barrier.final_costs and other.costs == barrier.costs
    # one initialisation is the first of several: its draws do not depend on n_init (sums of
    # a wider matrix product may differ in the last bits). Without the race every start runs
    # to the end, as the single one does; with it, a start that lost stopped where it was.
    single = _kmeans(spark, iris, tmp_path / "single", seed=7, n_init=1)
    full = _kmeans(spark, iris, tmp_path / "full", seed=7, n_init=4, race_passes=0)
    assert single.final_costs == pytest.approx(full.final_costs[:1], rel=1e-6)
    assert full.raced_out == [0, 0, 0, 0] and sum(1 for r in barrier.raced_out if r) >= 1
    assert min(barrier.final_costs) == pytest.approx(min(full.final_costs), rel=1e-6)
