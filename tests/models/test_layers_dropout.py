"""Inverted dropout and DropConnect: expectation, masks, determinism, bad input."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from jax231.models import layers as L


class DropoutTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.1, 0.5, 0.8)
    def test_train_keeps_expectation_and_scales_kept_units(self, drop_rate):
        n = 200_000
        x = jnp.full((n,), 3.0)
        y = self.variant(functools.partial(L.dropout, drop_rate=drop_rate, train=True))(x, rng=jax.random.key(0))
        chex.assert_shape(y, (n,))
        kept = np.asarray(y) != 0
        # Kept units are exactly x / (1 - p) (up to float32 rounding of the division).
        np.testing.assert_allclose(np.asarray(y)[kept], 3.0 / (1 - drop_rate), rtol=1e-6)
        # Fraction dropped ~ Binomial(n, p)/n: allow 6 standard deviations.
        sd = np.sqrt(drop_rate * (1 - drop_rate) / n)
        self.assertAlmostEqual(1 - kept.mean(), drop_rate, delta=6 * sd)
        # E[y] = x: the mean of y has sd 3·sqrt(p/((1-p) n)); allow 6 of them.
        self.assertAlmostEqual(float(jnp.mean(y)), 3.0, delta=6 * 3.0 * np.sqrt(drop_rate / ((1 - drop_rate) * n)))

    @parameterized.named_parameters(
        ("eval", 0.5, False, jax.random.key(0)), ("zero_rate", 0.0, True, None), ("eval_no_rng", 0.3, False, None)
    )
    def test_identity_cases(self, drop_rate, train, rng):
        x = jnp.arange(12.0).reshape(3, 4)
        np.testing.assert_array_equal(L.dropout(x, drop_rate=drop_rate, rng=rng, train=train), x)

    def test_same_seed_same_mask(self):
        x = jnp.ones((64, 64))
        a = L.dropout(x, drop_rate=0.5, rng=jax.random.key(3), train=True)
        b = L.dropout(x, drop_rate=0.5, rng=jax.random.key(3), train=True)
        c = L.dropout(x, drop_rate=0.5, rng=jax.random.key(4), train=True)
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a, c))

    def test_traced_drop_rate_under_vmap(self):
        rates = jnp.array([0.0, 0.25, 0.5])
        ys = jax.vmap(lambda p: L.dropout(jnp.ones(40_000), drop_rate=p, rng=jax.random.key(0), train=True))(rates)
        dropped = np.mean(np.asarray(ys) == 0, axis=1)
        # Binomial sd <= 0.0025 at n = 40k: 0.02 is 8 sd.
        np.testing.assert_allclose(dropped, rates, atol=0.02)

    def test_gradient_check(self):
        # For a fixed key dropout is linear in x: the gradient is mask / (1 - p).
        f = functools.partial(L.dropout, drop_rate=0.4, rng=jax.random.key(1), train=True)
        self.assertLess(gradcheck.check_grads(f, np.linspace(-1, 1, 20).reshape(4, 5)), 1e-7)

    @parameterized.named_parameters(
        ("negative", -0.1, jax.random.key(0), True, "^drop_rate: "),
        ("one", 1.0, jax.random.key(0), True, "^drop_rate: "),
        ("above_one", 1.5, jax.random.key(0), False, "^drop_rate: "),
        ("missing_rng", 0.5, None, True, "^rng: "),
        ("array_train", 0.5, jax.random.key(0), jnp.array(True), "^train: "),
    )
    def test_bad_input_raises(self, drop_rate, rng, train, name):
        with self.assertRaisesRegex(ValueError, name):
            L.dropout(jnp.ones(4), drop_rate=drop_rate, rng=rng, train=train)


class DropConnectTest(chex.TestCase):
    def test_drops_weights_shared_across_the_batch(self):
        w = jnp.ones((50, 40))
        w_dropped = L.drop_connect(w, drop_rate=0.5, rng=jax.random.key(0), train=True)
        chex.assert_shape(w_dropped, (50, 40))
        values = set(np.unique(np.asarray(w_dropped)).tolist())
        self.assertEqual(values, {0.0, 2.0})
        x = jnp.ones((2, 50))
        y = L.affine(x, w_dropped, jnp.zeros(40))
        # One mask for the whole batch: identical examples give identical outputs,
        # and each output is 2·(number of kept connections of its column).
        np.testing.assert_array_equal(y[0], y[1])
        np.testing.assert_allclose(y[0], 2.0 * np.sum(np.asarray(w_dropped) != 0, axis=0))

    def test_eval_is_identity_and_bad_rate_raises(self):
        w = jnp.arange(6.0).reshape(2, 3)
        np.testing.assert_array_equal(L.drop_connect(w, drop_rate=0.5, rng=None, train=False), w)
        with self.assertRaisesRegex(ValueError, "^drop_rate: "):
            L.drop_connect(w, drop_rate=1.0, rng=jax.random.key(0), train=True)


if __name__ == "__main__":
    absltest.main()
