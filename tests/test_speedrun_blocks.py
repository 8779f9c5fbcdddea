"""The speedrun's library blocks: whitening init, Dirac init, flip pairs, label smoothing,
the triangular schedule, the airbench net's options and the bf16 check.

References: float64 NumPy transcriptions (patch PCA, patches by explicit loops, np.interp),
optax (label smoothing), ``lax.conv`` through ``conv2d`` (the identity filters).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import losses, models, pipelines
from jax231.models import layers
from jax231.optimizers import schedules


def _numpy_patches(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Patches by explicit loops, flattened in (row, column, channel) order."""
    n, h, w, c = x.shape
    rows = []
    for i in range(n):
        for r in range(0, h - k + 1, s):
            for q in range(0, w - k + 1, s):
                rows.append(x[i, r : r + k, q : q + k, :].reshape(-1))
    return np.asarray(rows)


@pytest.mark.parametrize("k, s", [(2, 2), (2, 1), (3, 1)])
def test_image_patches_match_explicit_loops(k, s):
    x = (
        np.random.default_rng(0).normal(size=(3, 8, 8, 3))
        if k != 3
        else np.random.default_rng(0).normal(size=(3, 7, 7, 2))
    )
    np.testing.assert_array_equal(layers.image_patches(x, k, stride=s), _numpy_patches(x, k, s))


@pytest.mark.parametrize("k, s", [(2, None), (2, 1)])
def test_whitening_filters_reproduce_numpy_pca_of_the_patches(k, s):
    x = np.random.default_rng(1).normal(size=(20, 8, 8, 3)) * np.array([1.0, 0.5, 2.0])
    x[..., 1] += 0.7 * x[..., 0]  # correlated channels
    eps = 5e-4
    filters = layers.whitening_filters(x, patch_size=k, eps=eps, stride=s)
    d = k * k * 3
    chex.assert_shape(filters, (k, k, 3, 2 * d))
    p = _numpy_patches(x, k, s or k)
    lam, u = np.linalg.eigh(p.T @ p / len(p))
    lam, u = lam[::-1], u[:, ::-1]
    expected = u / np.sqrt(lam + eps)
    got = filters.reshape(d, 2 * d).astype(np.float64)
    # Eigenvectors are defined up to sign; float32 filters: rtol 1e-4.
    signs = np.sign(np.sum(got[:, :d] * expected, axis=0))
    np.testing.assert_allclose(got[:, :d], expected * signs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[:, d:], -got[:, :d])
    # The whitened patches have covariance diag(lambda / (lambda + eps)) (the identity up to eps).
    white = p @ got[:, :d]
    np.testing.assert_allclose(white.T @ white / len(p), np.diag(lam / (lam + eps)), atol=1e-4)


def test_whitening_as_the_first_convolution_whitens_the_patches():
    x = np.random.default_rng(2).normal(size=(16, 8, 8, 3))
    filters = layers.whitening_filters(x, patch_size=2, eps=0.0, stride=1)
    y = np.asarray(layers.conv2d(jnp.asarray(x, jnp.float32), filters, padding=0, impl="xla"))[..., :12]
    cov = y.reshape(-1, 12).T @ y.reshape(-1, 12) / (16 * 7 * 7)
    np.testing.assert_allclose(cov, np.eye(12), atol=2e-3)  # float32 conv of unit-variance outputs


@pytest.mark.parametrize(
    "k, message",
    [
        (3, r"^patch_size: expected k <= 32 with \(H - k\) and \(W - k\) multiples of the stride 3"),
        (0, r"^patch_size: expected a positive int, got 0$"),
    ],
)
def test_patch_size_that_does_not_tile_is_one_line_value_error(k, message):
    with pytest.raises(ValueError, match=message) as err:
        layers.whitening_filters(np.zeros((2, 32, 32, 3)), patch_size=k)
    assert "\n" not in str(err.value)


def test_dirac_filters_pass_the_first_channels_through():
    w = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 4, 6))
    d = layers.dirac(w)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 4))
    y = jax.jit(lambda x, d: layers.conv2d(x, d, padding=1, impl="xla"))(x, d)
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)
    np.testing.assert_array_equal(d[..., 4:], w[..., 4:])  # the other filters keep their values
    wide = layers.dirac(jnp.ones((3, 3, 6, 4)))  # fewer outputs than inputs: output o copies input o
    np.testing.assert_allclose(layers.conv2d(jnp.ones((1, 3, 3, 6)), wide, padding=1, impl="xla")[0, 1, 1], np.ones(4))


def test_flip_pairs_shows_each_image_once_in_each_orientation():
    images = np.random.default_rng(0).integers(0, 255, size=(5, 4, 6, 3)).astype(np.uint8)
    out = pipelines.flip_pairs({"image": images, "label": np.arange(5)})
    np.testing.assert_array_equal(out["image"][:5], images)
    np.testing.assert_array_equal(out["image"][5:], images[:, :, ::-1])
    np.testing.assert_array_equal(out["label"], np.r_[np.arange(5), np.arange(5)])
    with pytest.raises(ValueError, match=r"^arrays: expected an 'image' of shape \(N, H, W, C\)"):
        pipelines.flip_pairs({"image": images[0], "label": np.arange(1)})


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
def test_smoothed_cross_entropy_matches_optax(alpha):
    logits = jax.random.normal(jax.random.PRNGKey(0), (7, 10)) * 3
    labels = jnp.arange(7) % 10
    expected = optax.softmax_cross_entropy(logits, optax.smooth_labels(jax.nn.one_hot(labels, 10), alpha))
    np.testing.assert_allclose(
        losses.smoothed_cross_entropy(logits=logits, labels=labels, smoothing=alpha), expected, rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"^smoothing: expected a float in \[0, 1\], got 1.5$"):
        losses.smoothed_cross_entropy(logits=logits, labels=labels, smoothing=1.5)


def test_piecewise_linear_is_numpy_interp():
    sched = schedules.piecewise_linear((0, 23, 100), (0.2, 1.0, 0.07))
    steps = np.arange(-3, 110)
    np.testing.assert_allclose(
        jax.vmap(sched)(jnp.asarray(steps)), np.interp(steps, (0, 23, 100), (0.2, 1.0, 0.07)), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"^steps: expected increasing steps >= 0"):
        schedules.piecewise_linear((0, 5, 5), (1.0, 1.0, 1.0))


def _net(**kwargs):
    return models.airbench_net(layers.whitening_filters(np.random.default_rng(0).normal(size=(4, 32, 32, 3))), **kwargs)


def test_airbench_net_shapes_frozen_scale_and_parameter_count():
    shapes, _ = jax.eval_shape(lambda: _net().init(jax.random.PRNGKey(0), (32, 32, 3)))
    assert models.count_params(shapes) == 1_971_640  # airbench94's 1.97M (24-channel whitening, 64/256/256)
    model = _net(widths=(8, 16, 16))
    params, state = model.init(jax.random.PRNGKey(0), (32, 32, 3))
    assert set(params["group1"]["norm1"]) == {"beta"}  # the scale is frozen at 1: not a parameter
    apply = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))
    logits, new_state = apply(params, state, jnp.zeros((2, 32, 32, 3), jnp.uint8))
    chex.assert_shape(logits, (2, 10))
    chex.assert_trees_all_equal_structs(new_state, state)


def test_bf16_compute_is_close_to_float32():
    x = jax.random.uniform(jax.random.PRNGKey(2), (4, 32, 32, 3))
    f32 = _net(widths=(8, 16, 16))
    bf16 = _net(widths=(8, 16, 16), compute_dtype="bfloat16")
    params, state = f32.init(jax.random.PRNGKey(0), (32, 32, 3))
    (a, sa), (b, sb) = (
        jax.jit(lambda p, s, x, m=m: m.apply(p, s, x, train=True))(params, state, x) for m in (f32, bf16)
    )
    assert b.dtype == jnp.float32 and sb["group1"]["norm1"]["mean"].dtype == jnp.float32
    # bf16 keeps 8 mantissa bits (relative error ~4e-3 per operation, over ~8 layers).
    np.testing.assert_allclose(b, a, atol=0.05 * float(jnp.max(jnp.abs(a))))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"conv_impl": "winograd"}, r"^conv_impl: expected one of \('auto', 'xla', 'im2col'\), got 'winograd'$"),
        ({"compute_dtype": "float16"}, r"^compute_dtype: expected one of \('float32', 'bfloat16'\), got 'float16'$"),
        ({"widths": (64, 256)}, r"^widths: expected three positive ints, got \(64, 256\)$"),
    ],
)
def test_airbench_net_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _net(**kwargs)


def test_bf16_is_refused_on_a_backend_that_only_emulates_it():
    with pytest.raises(ValueError, match=r"^compute_dtype: expected 'float32' on the cpu backend .*got 'bfloat16'$"):
        models.check_compute_dtype("bfloat16", backend="cpu")
    assert models.check_compute_dtype("bfloat16", backend="gpu") == "bfloat16"
    assert models.check_compute_dtype("float32", backend="cpu") == "float32"
