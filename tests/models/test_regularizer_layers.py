"""Spatial dropout, Gaussian noise and fractional max pooling, against flax, TensorFlow and NumPy."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import gradcheck, models
from jax231.models import layers

# ----------------------------------------------------------------------------- spatial dropout


def test_spatial_dropout_equals_flax_dropout_broadcast_over_space():
    x = jax.random.normal(jax.random.key(0), (4, 5, 6, 8))
    key = jax.random.key(1)
    ours = layers.spatial_dropout(x, drop_rate=0.3, rng=key, train=True)
    ref = nn.Dropout(rate=0.3, broadcast_dims=(1, 2)).apply({}, x, deterministic=False, rng=key)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    # Every feature map is either kept whole (scaled by 1/(1-p)) or zero.
    kept = np.all(np.asarray(ours) != 0, axis=(1, 2))
    dropped = np.all(np.asarray(ours) == 0, axis=(1, 2))
    assert np.all(kept | dropped) and dropped.any() and kept.any()
    np.testing.assert_allclose(
        np.asarray(ours)[kept[:, None, None, :].repeat(5, 1).repeat(6, 2)],
        np.asarray(x / 0.7)[kept[:, None, None, :].repeat(5, 1).repeat(6, 2)],
        rtol=1e-6,
    )


def test_spatial_dropout_is_the_identity_at_eval_and_checks_its_input():
    x = jnp.ones((2, 3, 3, 4))
    assert layers.spatial_dropout(x, drop_rate=0.5, rng=None, train=False) is not None
    np.testing.assert_array_equal(layers.spatial_dropout(x, drop_rate=0.5, rng=None, train=False), x)
    with pytest.raises(ValueError, match="rank >= 3"):
        layers.spatial_dropout(jnp.ones((2, 4)), drop_rate=0.5, rng=jax.random.key(0), train=True)
    with pytest.raises(ValueError, match="drop_rate"):
        layers.spatial_dropout(x, drop_rate=1.0, rng=jax.random.key(0), train=True)


# ----------------------------------------------------------------------------- Gaussian noise


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_gaussian_noise_is_the_formula_with_the_keys_normal_draw(mode):
    x = jax.random.normal(jax.random.key(0), (3, 7))
    key = jax.random.key(5)
    eps = np.asarray(jax.random.normal(key, x.shape))
    expected = np.asarray(x) + 0.2 * eps if mode == "additive" else np.asarray(x) * (1 + 0.2 * eps)
    out = jax.jit(lambda x, k: layers.gaussian_noise(x, std=0.2, rng=k, train=True, mode=mode))(x, key)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(layers.gaussian_noise(x, std=0.2, rng=None, train=False, mode=mode), x)


def test_gaussian_noise_has_zero_mean_and_the_requested_std():
    x = jnp.full((200_000,), 3.0)
    noise = np.asarray(layers.gaussian_noise(x, std=0.5, rng=jax.random.key(2), train=True)) - 3.0
    # Standard errors: 0.5/sqrt(n) = 1.1e-3 for the mean, ~0.5/sqrt(2n) = 8e-4 for the std; 5 of them.
    assert abs(noise.mean()) < 5.6e-3
    assert abs(noise.std() - 0.5) < 4e-3


def test_gaussian_noise_bad_input_is_a_one_line_error_naming_the_argument():
    with pytest.raises(ValueError, match=r"^std: expected a scalar >= 0, got -0.1$"):
        layers.gaussian_noise(jnp.ones(3), std=-0.1, rng=jax.random.key(0), train=True)
    with pytest.raises(ValueError, match=r"^mode: expected one of"):
        layers.gaussian_noise(jnp.ones(3), std=0.1, rng=jax.random.key(0), train=True, mode="salt")
    with pytest.raises(ValueError, match=r"^rng: expected a PRNG key"):
        layers.gaussian_noise(jnp.ones(3), std=0.1, rng=None, train=True)


# ----------------------------------------------------------------------------- fractional max pooling


@pytest.mark.parametrize("pseudo_random", [True, False])
@pytest.mark.parametrize("overlapping", [True, False])
def test_max_pool_regions_matches_tensorflow_fractional_max_pool(pseudo_random, overlapping):
    import tensorflow as tf  # deferred: TensorFlow is slow to import

    x = np.random.default_rng(0).standard_normal((2, 13, 11, 3)).astype(np.float32)
    y, rows, cols = tf.nn.fractional_max_pool(
        x, [1.0, math.sqrt(2), 1.5, 1.0], pseudo_random=pseudo_random, overlapping=overlapping, seed=7
    )
    ours = layers.max_pool_regions(x, rows.numpy(), cols.numpy(), overlapping=overlapping)
    np.testing.assert_array_equal(ours, y.numpy())  # a max selects an input value: exact


@pytest.mark.parametrize("pseudo_random", [True, False])
@pytest.mark.parametrize("size, ratio", [(32, math.sqrt(2)), (23, 1.5), (10, 1.9)])
def test_pooling_boundaries_have_graham_increments(pseudo_random, size, ratio):
    out = layers.fractional_output_size(size, ratio)
    assert out == int(size // ratio)
    q, r = divmod(size, out)
    draw = jax.jit(lambda k: layers.pooling_boundaries(k, size, out, pseudo_random=pseudo_random))
    for seed in range(3):
        a = np.asarray(draw(jax.random.key(seed)))
        assert a[0] == 0 and a[-1] == size and a.shape == (out + 1,)
        steps = np.diff(a)
        assert set(steps) <= {q, q + 1} and np.sum(steps == q + 1) == r


def test_fractional_max_pool_shape_randomness_and_gradient():
    x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    fmp = jax.jit(lambda x, k: layers.fractional_max_pool(x, ratio=math.sqrt(2), rng=k))
    a, b = fmp(x, jax.random.key(1)), fmp(x, jax.random.key(2))
    assert a.shape == (2, 11, 11, 3)
    np.testing.assert_array_equal(a, fmp(x, jax.random.key(1)))  # same key, same regions
    assert not np.array_equal(a, b)  # another key draws other regions
    # Distinct random inputs keep the maxima away from ties (the kinks of max).
    x_small = np.random.default_rng(1).standard_normal((1, 7, 6, 2))
    gradcheck.check_grads(
        lambda v: layers.fractional_max_pool(v, ratio=(1.5, 1.3), rng=jax.random.key(3)),
        x_small,
        tol=1e-7,
        num_checks=20,
    )


@pytest.mark.parametrize("ratio", [1.0, 0.5, -2.0, (1.5, 1.0), "2"])
def test_fractional_max_pool_rejects_ratios_not_above_one(ratio):
    with pytest.raises(ValueError, match=r"^ratio: expected a float > 1"):
        layers.fractional_max_pool(jnp.ones((1, 8, 8, 1)), ratio=ratio, rng=jax.random.key(0))


def test_fractional_max_pool_needs_an_rng():
    with pytest.raises(ValueError, match=r"^rng: expected a PRNG key"):
        layers.fractional_max_pool(jnp.ones((1, 8, 8, 1)), ratio=1.5, rng=None)


# ----------------------------------------------------------------------------- noise in the MLP


def test_mlp_noise_options_are_the_formula_in_train_mode_and_off_at_eval():
    noisy = models.mlp(hidden_sizes=(8, 8), num_classes=3, input_noise_std=0.3, noise_std=0.5)
    plain = models.mlp(hidden_sizes=(8, 8), num_classes=3)
    params, state = plain.init(jax.random.key(0), (5,))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    rng = jax.random.key(2)
    np.testing.assert_array_equal(
        noisy.apply(params, state, x, train=False)[0], plain.apply(params, state, x, train=False)[0]
    )

    # float64 NumPy: h_0 = x + 0.3 eps_0, h_i = relu(h_{i-1} W_i + b_i) + 0.5 eps_i, the draws of the
    # documented keys (fold 1000 for the input, 1001 + i for hidden layer i).
    def eps(fold, shape):
        return np.asarray(jax.random.normal(jax.random.fold_in(rng, fold), shape), np.float64)

    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    h = np.asarray(x, np.float64) + 0.3 * eps(1000, (4, 5))
    for i in range(2):
        h = np.maximum(h @ p[f"dense_{i}"]["w"] + p[f"dense_{i}"]["b"], 0) + 0.5 * eps(1001 + i, (4, 8))
    expected = h @ p["head"]["w"] + p["head"]["b"]
    out = noisy.apply(params, state, x, train=True, rng=rng)[0]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)  # float32 vs float64
    assert not np.allclose(np.asarray(out), np.asarray(plain.apply(params, state, x, train=False)[0]), atol=1e-2)
    with pytest.raises(ValueError, match=r"^mlp rng: expected a jax.random key"):
        noisy.apply(params, state, x, train=True)  # stochastic in train mode: a key is required
    with pytest.raises(ValueError, match=r"^noise_std: expected a value >= 0, got -0.1$"):
        models.mlp(noise_std=-0.1)
