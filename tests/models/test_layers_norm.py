"""Normalisation layers against flax.linen BatchNorm / LayerNorm / GroupNorm and NumPy."""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from jax231.models import layers as L

# flax computes the variance as E[x^2] - E[x]^2 (ours is two-pass): for unit-scale
# float32 inputs the two differ by a few float32 ulps of E[x^2] ~ 1-10.
RTOL32, ATOL32 = 1e-5, 2e-5


def _randn(seed: int, *shape: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return (shift + scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _channel_params(c: int):
    """gamma, beta, running mean and (positive) running var, all distinct per channel."""
    return _randn(10, c, scale=0.5, shift=1.0), _randn(11, c), _randn(12, c), np.abs(_randn(13, c)) + 0.5


class BatchNormTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("1d", (8, 5)), ("spatial", (4, 3, 3, 5)))
    def test_train_matches_flax(self, shape):
        x = _randn(0, *shape, scale=2.0, shift=3.0)
        gamma, beta, mean, var = _channel_params(shape[-1])
        bn = functools.partial(L.batch_norm, train=True, momentum=0.9, eps=1e-5)
        y, new_mean, new_var = self.variant(bn)(x, gamma, beta, mean, var)
        ref, updates = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5).apply(
            {"params": {"scale": gamma, "bias": beta}, "batch_stats": {"mean": mean, "var": var}},
            x,
            mutable=["batch_stats"],
        )
        chex.assert_shape(y, shape)
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)
        chex.assert_trees_all_close(
            (new_mean, new_var),
            (updates["batch_stats"]["mean"], updates["batch_stats"]["var"]),
            rtol=RTOL32,
            atol=ATOL32,
        )

    def test_train_matches_numpy_transcription(self):
        x = _randn(0, 6, 2, 2, 3).astype(np.float64)
        gamma, beta, mean, var = (a.astype(np.float64) for a in _channel_params(3))
        with jax.enable_x64(True):
            y, new_mean, new_var = L.batch_norm(x, gamma, beta, mean, var, train=True, momentum=0.8, eps=1e-3)
        mu, sigma2 = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # biased variance
        # Tolerance: float64 on both sides, only rounding differences.
        np.testing.assert_allclose(y, gamma * (x - mu) / np.sqrt(sigma2 + 1e-3) + beta, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(new_mean, 0.8 * mean + 0.2 * mu, rtol=1e-12)
        np.testing.assert_allclose(new_var, 0.8 * var + 0.2 * sigma2, rtol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    def test_eval_matches_flax_and_uses_running_statistics(self):
        x = _randn(0, 8, 4, scale=2.0, shift=3.0)
        gamma, beta, mean, var = _channel_params(4)
        y, same_mean, same_var = self.variant(functools.partial(L.batch_norm, train=False))(x, gamma, beta, mean, var)
        ref = nn.BatchNorm(use_running_average=True, epsilon=1e-5).apply(
            {"params": {"scale": gamma, "bias": beta}, "batch_stats": {"mean": mean, "var": var}}, x
        )
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)
        chex.assert_trees_all_close(y, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=RTOL32, atol=ATOL32)
        np.testing.assert_array_equal(same_mean, mean)
        np.testing.assert_array_equal(same_var, var)

    def test_train_and_eval_differ_and_train_normalises(self):
        x = _randn(0, 64, 3, scale=4.0, shift=-2.0)
        ones, zeros = jnp.ones(3), jnp.zeros(3)
        y_train, _, _ = L.batch_norm(x, ones, zeros, zeros, ones, train=True)
        y_eval, _, _ = L.batch_norm(x, ones, zeros, zeros, ones, train=False)
        # Train: per-channel mean 0 and (biased) variance 1 up to eps/var ~ 1e-6.
        np.testing.assert_allclose(np.mean(y_train, axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(np.var(y_train, axis=0), 1.0, rtol=1e-4)
        # Eval with fresh statistics (0, 1) is nearly the identity, far from y_train.
        np.testing.assert_allclose(y_eval, x / np.sqrt(1 + 1e-5), rtol=1e-6)
        self.assertGreater(float(jnp.max(jnp.abs(y_train - y_eval))), 1.0)

    def test_running_statistics_converge_to_the_data_statistics(self):
        x = _randn(0, 256, 2, scale=3.0, shift=5.0)
        stats = (jnp.zeros(2), jnp.ones(2))
        step = jax.jit(lambda m, v: L.batch_norm(x, jnp.ones(2), jnp.zeros(2), m, v, train=True)[1:])
        for _ in range(100):
            stats = step(*stats)
        # After 100 steps of momentum 0.9 the initial values weigh 0.9**100 ~ 3e-5.
        np.testing.assert_allclose(stats[0], x.mean(axis=0), rtol=1e-3)
        np.testing.assert_allclose(stats[1], x.var(axis=0), rtol=1e-3)

    def test_axis_name_synchronises_statistics_across_shards(self):
        x = _randn(0, 8, 3, scale=2.0, shift=1.0)
        gamma, beta, mean, var = _channel_params(3)
        full = L.batch_norm(x, gamma, beta, mean, var, train=True)
        sharded = jax.vmap(
            functools.partial(L.batch_norm, train=True, axis_name="devices"),
            in_axes=(0, None, None, None, None),
            axis_name="devices",
        )(x.reshape(4, 2, 3), gamma, beta, mean, var)
        chex.assert_trees_all_close(sharded[0].reshape(8, 3), full[0], rtol=RTOL32, atol=ATOL32)
        chex.assert_trees_all_close((sharded[1][0], sharded[2][0]), full[1:], rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(("train", True), ("eval", False))
    def test_gradient_check(self, train):
        gamma, beta, mean, var = _channel_params(3)

        def f(x, g, b):
            return L.batch_norm(x, g, b, mean, var, train=train)[0]

        err = gradcheck.check_grads(f, _randn(0, 4, 2, 3, scale=2.0), gamma, beta, argnums=(0, 1, 2))
        self.assertLess(err, 1e-7)

    def test_spatial_batch_norm(self):
        x = _randn(0, 2, 3, 3, 4)
        args = _channel_params(4)
        chex.assert_trees_all_close(
            L.spatial_batch_norm(x, *args, train=True), L.batch_norm(x, *args, train=True), rtol=0, atol=0
        )
        with self.assertRaisesRegex(ValueError, r"x: expected rank 4"):
            L.spatial_batch_norm(x.reshape(18, 4), *args, train=True)

    @parameterized.named_parameters(
        ("gamma", (5,), (4,), True, "^gamma: "),
        ("running_var", (4,), (3,), True, "^running_var: "),
        ("traced_train", (4,), (4,), jnp.array(True), "^train: "),
    )
    def test_bad_input_raises(self, gamma_shape, var_shape, train, name):
        with self.assertRaisesRegex(ValueError, name):
            L.batch_norm(
                jnp.ones((2, 4)), jnp.ones(gamma_shape), jnp.zeros(4), jnp.zeros(4), jnp.ones(var_shape), train=train
            )


class LayerGroupNormTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("2d", (4, 6)), ("4d", (2, 3, 3, 6)))
    def test_layer_norm_matches_flax(self, shape):
        x = _randn(0, *shape, scale=2.0, shift=1.0)
        gamma, beta, _, _ = _channel_params(6)
        y = self.variant(functools.partial(L.layer_norm, eps=1e-5))(x, gamma, beta)
        ref = nn.LayerNorm(epsilon=1e-5).apply({"params": {"scale": gamma, "bias": beta}}, x)
        chex.assert_shape(y, shape)
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("groups2_4d", (2, 3, 3, 6), 2),
        ("groups3_2d", (4, 6), 3),
        ("instance", (2, 4, 4, 6), 6),
        ("one_group", (2, 2, 6), 1),
    )
    def test_group_norm_matches_flax(self, shape, num_groups):
        x = _randn(0, *shape, scale=2.0, shift=1.0)
        gamma, beta, _, _ = _channel_params(6)
        y = self.variant(functools.partial(L.group_norm, num_groups=num_groups, eps=1e-5))(x, gamma, beta)
        ref = nn.GroupNorm(num_groups=num_groups, epsilon=1e-5).apply({"params": {"scale": gamma, "bias": beta}}, x)
        chex.assert_shape(y, shape)
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(
        ("layer_norm", L.layer_norm, (3, 4)),
        ("group_norm", functools.partial(L.group_norm, num_groups=2), (2, 2, 2, 4)),
    )
    def test_gradient_check(self, fn, shape):
        gamma, beta, _, _ = _channel_params(4)
        err = gradcheck.check_grads(fn, _randn(0, *shape), gamma, beta, argnums=(0, 1, 2))
        self.assertLess(err, 1e-7)

    def test_bad_input_raises(self):
        with self.assertRaisesRegex(ValueError, "^num_groups: "):
            L.group_norm(jnp.ones((2, 6)), jnp.ones(6), jnp.zeros(6), num_groups=4)
        with self.assertRaisesRegex(ValueError, "^beta: "):
            L.layer_norm(jnp.ones((2, 6)), jnp.ones(6), jnp.zeros(5))


if __name__ == "__main__":
    absltest.main()
