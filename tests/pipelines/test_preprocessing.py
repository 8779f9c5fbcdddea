"""Preprocessing of the notes against float64 NumPy and scikit-learn."""

import chex
import jax
import numpy as np
import pytest

from jax231 import pipelines


def _images(n=200, shape=(4, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    # Correlated pixels with distinct scales, so PCA has a clear spectrum.
    mixing = rng.normal(size=(int(np.prod(shape)),) * 2) * np.linspace(0.2, 2.0, int(np.prod(shape)))
    return (rng.normal(size=(n, int(np.prod(shape)))) @ mixing + 3.0).reshape(n, *shape).astype(np.float32)


def _reference(x_train, x, method, k=None):
    """Float64 transcription of the notes' formulas (X: N x D)."""
    xt = x_train.astype(np.float64)
    x = x.astype(np.float64)
    if method == "mean_image":
        return x - xt.mean(axis=0)
    if method == "per_channel":
        axes = tuple(range(xt.ndim - 1))
        return (x - xt.mean(axis=axes)) / xt.std(axis=axes)
    flat_train = xt.reshape(len(xt), -1)
    mean = flat_train.mean(axis=0)
    cov = (flat_train - mean).T @ (flat_train - mean) / len(xt)
    u, s, _ = np.linalg.svd(cov)  # cov = U diag(S) U^T, S descending
    k = k or cov.shape[0]
    rot = (x.reshape(len(x), -1) - mean) @ u[:, :k]
    return rot / np.sqrt(s[:k] + 1e-5) if method == "whiten" else rot


@pytest.mark.parametrize(
    "method, k", [("mean_image", None), ("per_channel", None), ("pca", 5), ("pca", None), ("whiten", 7)]
)
def test_matches_float64_reference_on_held_out_data(method, k):
    train, held_out = _images(seed=0), _images(n=30, seed=1)
    stats = pipelines.fit_preprocessing(train, method=method, num_components=k)
    got = np.asarray(pipelines.apply_preprocessing(stats, held_out))
    ref = _reference(train, held_out, method, k)
    if method in ("pca", "whiten"):
        # Eigenvectors are defined up to sign: align each column before comparing.
        got = got * np.sign(np.sum(got * ref, axis=0))
    # float32 statistics and matmul on values of order 10: 1e-4 relative.
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_pca_agrees_with_scikit_learn():
    from sklearn.decomposition import PCA

    train = _images()
    stats = pipelines.fit_preprocessing(train, method="pca", num_components=6)
    ref = PCA(n_components=6, svd_solver="full").fit(train.reshape(len(train), -1).astype(np.float64))
    ours = np.asarray(pipelines.apply_preprocessing(stats, train))
    theirs = ref.transform(train.reshape(len(train), -1).astype(np.float64))
    ours = ours * np.sign(np.sum(ours * theirs, axis=0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    # sklearn's variances use N - 1; ours the notes' N.
    np.testing.assert_allclose(stats.eigenvalues * len(train) / (len(train) - 1), ref.explained_variance_, rtol=1e-5)


def test_whitened_training_data_has_identity_covariance():
    train = _images(n=500)
    stats = pipelines.fit_preprocessing(train, method="whiten")
    white = np.asarray(pipelines.apply_preprocessing(stats, train), np.float64)
    cov = white.T @ white / len(white)
    # diag(S / (S + eps)) with eps = 1e-5 (the notes' guard), identity where
    # S >> eps; float32 projections: 1e-3.
    s = stats.eigenvalues.astype(np.float64)
    np.testing.assert_allclose(cov, np.diag(s / (s + 1e-5)), atol=1e-3)
    assert np.sum(s > 1e-2) > 20  # most directions are genuinely whitened to 1


def test_statistics_see_only_the_training_images():
    train = np.zeros((10, 2, 2, 1), np.float32)
    val = np.full((5, 2, 2, 1), 7.0, np.float32)
    stats = pipelines.fit_preprocessing(train, method="mean_image")
    np.testing.assert_array_equal(pipelines.apply_preprocessing(stats, val), val)


def test_uint8_input_is_scaled_like_the_pipeline():
    pixels = np.random.default_rng(0).integers(0, 256, (20, 3, 3, 3), dtype=np.uint8)
    a = pipelines.fit_preprocessing(pixels, method="per_channel")
    b = pipelines.fit_preprocessing(pixels / np.float32(255), method="per_channel")
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    np.testing.assert_allclose(
        pipelines.apply_preprocessing(a, pixels),
        pipelines.apply_preprocessing(b, pixels / np.float32(255)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_apply_is_jittable_and_deterministic():
    train = _images()
    stats = pipelines.fit_preprocessing(train, method="whiten", num_components=4)
    again = pipelines.fit_preprocessing(train, method="whiten", num_components=4)
    np.testing.assert_array_equal(stats.components, again.components)
    out = jax.jit(pipelines.apply_preprocessing)(stats, train[:8])
    chex.assert_shape(out, (8, 4))
    np.testing.assert_allclose(out, pipelines.apply_preprocessing(stats, train[:8]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "zca"}, "method"),
        ({"method": "pca", "num_components": 0}, "num_components"),
        ({"method": "mean_image", "num_components": 3}, "num_components"),
    ],
)
def test_bad_fit_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipelines.fit_preprocessing(_images(n=10), **kwargs)


def test_bad_apply_shape():
    stats = pipelines.fit_preprocessing(_images(n=10), method="mean_image")
    with pytest.raises(ValueError, match="images: expected"):
        pipelines.apply_preprocessing(stats, np.zeros((2, 4, 3, 1), np.float32))
