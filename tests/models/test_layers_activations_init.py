"""Activations against float64 NumPy/SciPy transcriptions; initialisers and the notes' depth experiment."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from jax231.models import layers as L

# Inputs kept at least 0.05 away from 0 so that a centred difference of
# h = 1e-5 never straddles the kink of relu / leaky_relu / elu / maxout ties.
X = np.concatenate([np.linspace(-3.0, -0.05, 6), np.linspace(0.05, 3.0, 6)]).reshape(3, 4)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name, our function, float64 NumPy transcription of the notes' formula.
ACTIVATION_CASES = [
    ("sigmoid", L.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", L.tanh, np.tanh),
    ("relu", L.relu, lambda x: np.maximum(0, x)),
    ("leaky_relu", functools.partial(L.leaky_relu, alpha=0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    ("elu", functools.partial(L.elu, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    ("selu", L.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))),
    (
        "prelu",
        lambda x: L.prelu(x, jnp.array([0.1, 0.2, 0.3, 0.4])),
        lambda x: np.where(x > 0, x, np.array([0.1, 0.2, 0.3, 0.4]) * x),
    ),
    ("maxout", functools.partial(L.maxout, num_pieces=2), lambda x: np.maximum(x[..., 0::2], x[..., 1::2])),
    ("softmax", L.softmax, lambda x: scipy.special.softmax(x, axis=-1)),
    ("log_softmax", L.log_softmax, lambda x: scipy.special.log_softmax(x, axis=-1)),
]


class ActivationTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*ACTIVATION_CASES)
    def test_matches_float64_reference(self, fn, reference):
        with jax.enable_x64(True):
            y = self.variant(fn)(X)
        expected = reference(X)
        chex.assert_shape(y, expected.shape)
        # float64 on both sides: only rounding differences.
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)

    @parameterized.named_parameters(*ACTIVATION_CASES)
    def test_gradient_check(self, fn, reference):
        del reference
        self.assertLess(gradcheck.check_grads(fn, X), 1e-7)

    def test_prelu_alpha_is_learned(self):
        alpha = jnp.array([0.1, 0.2, 0.3, 0.4])
        self.assertLess(gradcheck.check_grads(L.prelu, X, alpha, argnums=1), 1e-7)
        with self.assertRaisesRegex(ValueError, "^alpha: "):
            L.prelu(X, jnp.ones(3))

    def test_relu_gradient_is_zero_at_zero(self):
        self.assertEqual(float(jax.grad(L.relu)(0.0)), 0.0)

    @parameterized.named_parameters(("softmax", L.softmax), ("log_softmax", L.log_softmax))
    def test_softmax_is_stable_for_huge_logits(self, fn):
        big = jnp.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
        y = fn(big)
        chex.assert_tree_all_finite(y)
        # Shift invariance: the same as the logits moved to a safe range.
        chex.assert_trees_all_close(y, fn(jnp.array([[0.0, 1.0, 2.0], [0.0, -1.0, -2.0]])), rtol=1e-6, atol=1e-6)

    def test_elu_gradient_finite_for_large_inputs(self):
        chex.assert_tree_all_finite(jax.grad(lambda x: jnp.sum(L.elu(x)))(jnp.array([100.0, 1000.0])))

    def test_maxout_shape_and_bad_width(self):
        chex.assert_shape(L.maxout(jnp.ones((2, 5, 12)), num_pieces=3), (2, 5, 4))
        with self.assertRaisesRegex(ValueError, "num_pieces=5"):
            L.maxout(jnp.ones((2, 12)), num_pieces=5)

    def test_registry(self):
        self.assertIs(L.get_activation("relu"), L.relu)
        self.assertIs(L.get_activation(L.tanh), L.tanh)
        for name, fn in L.ACTIVATIONS.items():
            self.assertIs(L.get_activation(name), fn)
        with self.assertRaisesRegex(ValueError, r"name: expected one of \['elu', 'identity'"):
            L.get_activation("swish")


class InitializerTest(parameterized.TestCase):
    @parameterized.named_parameters(
        ("small", L.small_random, (400, 300), 0.01),
        ("xavier", L.xavier, (400, 300), 1 / np.sqrt(400)),
        ("he", L.he, (400, 300), np.sqrt(2 / 400)),
        ("he_conv_fan_in_FFC", L.he, (3, 3, 16, 800), np.sqrt(2 / (3 * 3 * 16))),
    )
    def test_standard_deviation(self, init, shape, expected_std):
        w = init(jax.random.key(0), shape)
        chex.assert_shape(w, shape)
        self.assertEqual(w.dtype, jnp.float32)
        # 120k normal draws: the sample std is within ~0.2% (1 sd); allow 1%.
        np.testing.assert_allclose(np.std(np.asarray(w, np.float64)), expected_std, rtol=0.01)
        self.assertLess(abs(float(np.mean(w))), 5 * expected_std / np.sqrt(w.size))

    def test_fan_in_and_options(self):
        self.assertEqual(L.fan_in((3, 3, 16, 32)), 144)
        self.assertEqual(L.fan_in((100, 10)), 100)
        with self.assertRaisesRegex(ValueError, "^shape: "):
            L.fan_in((10,))
        w = L.small_random(jax.random.key(0), (200, 200), jnp.float16, std=0.5)
        self.assertEqual(w.dtype, jnp.float16)
        np.testing.assert_allclose(np.std(np.asarray(w, np.float64)), 0.5, rtol=0.02)

    def test_same_seed_same_numbers(self):
        a = L.init_affine(jax.random.key(7), 5, 3, init="xavier")
        b = L.init_affine(jax.random.key(7), 5, 3, init="xavier")
        chex.assert_trees_all_equal(a, b)

    def test_parameter_constructors(self):
        affine = L.init_affine(jax.random.key(0), 5, 3)
        chex.assert_shape([affine["w"], affine["b"]], [(5, 3), (3,)])
        np.testing.assert_array_equal(affine["b"], 0.0)
        conv = L.init_conv(jax.random.key(0), 3, 4, 8)
        chex.assert_shape([conv["w"], conv["b"]], [(3, 3, 4, 8), (8,)])
        conv1 = L.init_conv(jax.random.key(0), 5, 4, 8, spatial_dims=1, init="small")
        chex.assert_shape(conv1["w"], (5, 4, 8))
        norm, stats = L.init_norm(6), L.init_batch_norm_stats(6)
        chex.assert_trees_all_equal(norm, {"gamma": jnp.ones(6), "beta": jnp.zeros(6)})
        chex.assert_trees_all_equal(stats, {"mean": jnp.zeros(6), "var": jnp.ones(6)})

    def test_registry_and_bad_names(self):
        self.assertEqual(sorted(L.INITIALIZERS), ["he", "small", "xavier"])
        self.assertIs(L.get_initializer("he"), L.he)
        with self.assertRaisesRegex(ValueError, r"init: expected one of \['he', 'small', 'xavier'\]"):
            L.init_affine(jax.random.key(0), 5, 3, init="glorot")
        with self.assertRaisesRegex(ValueError, "^in_dim: "):
            L.init_affine(jax.random.key(0), 0, 3)


class DeepNetworkActivationsTest(parameterized.TestCase):
    """The notes' experiment: 10 layers of 500 units on unit-Gaussian inputs."""

    @staticmethod
    def _layer_stds(activation: str, init: str) -> np.ndarray:
        x = jax.random.normal(jax.random.key(0), (200, 500))
        keys = jax.random.split(jax.random.key(1), 10)

        def layer(h, key):
            h = L.get_activation(activation)(h @ L.get_initializer(init)(key, (500, 500)))
            return h, jnp.std(h)

        return np.asarray(jax.lax.scan(layer, x, keys)[1])

    @parameterized.parameters("tanh", "relu")
    def test_small_random_collapses_activations(self, activation):
        stds = self._layer_stds(activation, "small")
        # Each layer scales the spread by ~0.01·sqrt(500) ~ 0.22 (less after ReLU): ~1e-7 after 10.
        self.assertLess(stds[-1], 1e-5)
        self.assertTrue(np.all(np.diff(stds) < 0))

    def test_xavier_keeps_tanh_spread(self):
        stds = self._layer_stds("tanh", "xavier")
        self.assertGreater(stds[-1], 0.1)  # the notes' plot: ~0.2 at layer 10

    def test_he_keeps_relu_spread_where_xavier_halves_it(self):
        he = self._layer_stds("relu", "he")
        self.assertTrue(0.5 < he[-1] / he[0] < 2.0)
        xavier = self._layer_stds("relu", "xavier")
        self.assertLess(xavier[-1] / xavier[0], 0.1)  # variance halves per layer: ~(1/sqrt 2)^9


if __name__ == "__main__":
    absltest.main()
