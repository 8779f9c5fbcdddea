"""k-means against scikit-learn's KMeans (Lloyd) from the same initial centroids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from jax231 import cluster
from tests import test_utils


def _blobs(seed=0, n=300, k=4, d=5):
    x, _ = make_blobs(n_samples=n, centers=k, n_features=d, cluster_std=2.0, random_state=seed)
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lloyd_matches_sklearn_from_same_init(seed):
    x = _blobs(seed)
    init = x[np.random.default_rng(seed).choice(len(x), 4, replace=False)]
    ref = KMeans(n_clusters=4, init=init, n_init=1, algorithm="lloyd", tol=1e-4, max_iter=300).fit(x)
    with test_utils.x64():
        got = cluster.kmeans(jnp.asarray(x), jnp.asarray(init), tol=1e-4)
        # float64 on both sides: only the summation order differs.
        np.testing.assert_allclose(np.asarray(got.centroids), ref.cluster_centers_, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(np.asarray(got.labels), ref.labels_)
        np.testing.assert_allclose(float(got.inertia), ref.inertia_, rtol=1e-9)
        assert int(got.num_iters) == ref.n_iter_


def test_float32_jitted_labels_match_and_inertia_close():
    x = _blobs(3).astype(np.float32)
    init = x[:4]
    ref = KMeans(n_clusters=4, init=init.astype(np.float64), n_init=1, algorithm="lloyd").fit(x.astype(np.float64))
    got = cluster.kmeans(x, init)
    np.testing.assert_array_equal(np.asarray(got.labels), ref.labels_)
    # float32 sums over 300 points of magnitude ~10: relative error ~1e-6.
    np.testing.assert_allclose(np.asarray(got.centroids), ref.cluster_centers_, rtol=1e-4, atol=1e-4)


def test_kmeans_plusplus_seeds_are_distinct_points_and_reproducible():
    x = jnp.asarray(_blobs(4), jnp.float32)
    a = cluster.kmeans_plusplus(jax.random.key(0), x, 4)
    b = cluster.kmeans_plusplus(jax.random.key(0), x, 4)
    np.testing.assert_array_equal(a, b)
    rows = {tuple(np.asarray(r)) for r in a}
    assert len(rows) == 4 and all(any(np.array_equal(r, p) for p in np.asarray(x)) for r in np.asarray(a))
    # Seeded from k-means++, Lloyd finds the 4 well-separated blobs' inertia as sklearn's best of 10 does.
    result = cluster.kmeans(x, 4, rng=jax.random.key(0))
    best = KMeans(n_clusters=4, n_init=10, random_state=0).fit(np.asarray(x, np.float64))
    assert float(result.inertia) <= best.inertia_ * 1.01


def test_empty_cluster_keeps_its_centroid():
    x = jnp.asarray([[0.0], [0.1], [10.0]])
    init = jnp.asarray([[0.0], [10.0], [100.0]])  # the third centre attracts no point
    result = cluster.kmeans(x, init)
    np.testing.assert_allclose(np.asarray(result.centroids)[:, 0], [0.05, 10.0, 100.0], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": np.zeros(5), "init": 2}, "x: expected a \\(N, D\\)"),
        ({"x": np.zeros((5, 2)), "init": 6, "rng": jax.random.key(0)}, "num_clusters: expected"),
        ({"x": np.zeros((5, 2)), "init": np.zeros((2, 3))}, "init: expected \\(K, 2\\)"),
        ({"x": np.zeros((5, 2)), "init": 2}, "rng: expected"),
        ({"x": np.zeros((5, 2)), "init": np.zeros((2, 2)), "max_iters": 0}, "max_iters: expected"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cluster.kmeans(**kwargs)
