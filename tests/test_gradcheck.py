"""Gradient checking: closed-form derivatives, SciPy finite differences, and deliberately wrong VJPs."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from tests import test_utils


def _randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _f(x):
    return jnp.sum(jnp.sin(x) * x**2)


def _df(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def _scaled_vjp(scale: float):
    """Elementwise x**3 whose custom VJP is wrong by the factor ``scale`` (1.0: correct)."""

    @jax.custom_vjp
    def cube(x):
        return x**3

    def fwd(x):
        return x**3, x

    def bwd(x, g):
        return (scale * 3 * x**2 * g,)

    cube.defvjp(fwd, bwd)
    return cube


class RelErrorTest(parameterized.TestCase):
    @parameterized.parameters(
        (np.array([1.0, 2.0]), np.array([1.0, 2.0])),
        (np.array([1.0, -2.0, 0.0]), np.array([1.1, -2.0, 1e-9])),
        (np.array([[3.0, 1e-3]]), np.array([[3.0, 2e-3]])),
    )
    def test_matches_course_formula(self, a, b):
        self.assertAlmostEqual(gradcheck.rel_error(a, b), test_utils.rel_error(a, b), places=15)

    def test_floor_pytrees_and_bad_input(self):
        self.assertEqual(gradcheck.rel_error(np.zeros(3), np.zeros(3)), 0.0)
        # |a - b| / 1e-8 when both are tiny: 1e-9 / 1e-8.
        self.assertAlmostEqual(gradcheck.rel_error(np.array([1e-9]), np.array([0.0])), 0.1)
        tree_a = {"w": np.ones(2), "b": np.array([1.0])}
        tree_b = {"w": np.ones(2), "b": np.array([3.0])}
        self.assertAlmostEqual(gradcheck.rel_error(tree_a, tree_b), 0.5)
        with self.assertRaisesRegex(ValueError, "shapes"):
            gradcheck.rel_error(np.ones(2), np.ones(3))
        with self.assertRaisesRegex(ValueError, "structure"):
            gradcheck.rel_error({"w": np.ones(2)}, [np.ones(2)])


class NumericalGradTest(parameterized.TestCase):
    def test_matches_closed_form_in_float64(self):
        x = _randn(0, 3, 4).astype(np.float32)  # cast to float64 internally
        g = gradcheck.numerical_grad(_f, x)
        self.assertEqual(g.dtype, np.float64)
        chex.assert_shape(g, (3, 4))
        # Centred differences: truncation h²·f'''/6 ~ 1e-10, rounding ~1e-16·|f|/h ~ 1e-11.
        self.assertLess(gradcheck.rel_error(g, _df(x.astype(np.float64))), 1e-7)

    def test_agrees_with_scipy_forward_differences(self):
        x = _randn(1, 6)
        with jax.enable_x64(True):
            expected = scipy.optimize.approx_fprime(x, lambda v: float(_f(jnp.asarray(v))), 1e-7)
        # SciPy's forward difference is only O(h) ~ 1e-7 accurate.
        np.testing.assert_allclose(gradcheck.numerical_grad(_f, x), expected, rtol=1e-5, atol=1e-6)

    def test_pytree_input_keeps_structure(self):
        x = {"a": _randn(2, 2), "b": (_randn(3, 3),)}
        g = gradcheck.numerical_grad(lambda t: _f(t["a"]) + 2 * _f(t["b"][0]), x)
        chex.assert_trees_all_equal_structs(g, x)
        self.assertLess(gradcheck.rel_error(g, {"a": _df(x["a"]), "b": (2 * _df(x["b"][0]),)}), 1e-7)

    def test_large_input_is_evaluated_in_chunks(self):
        # Above one chunk of 1024 coordinates (the last chunk is padded). Entries kept >= 1 so
        # every derivative 3x² >= 3 dwarfs the rounding noise ~1e-16·|f|/h ~ 1e-8 of differencing a sum of 1500 cubes.
        x = 1.0 + np.abs(_randn(4, 1500))
        g = gradcheck.numerical_grad(lambda v: jnp.sum(v**3), x)
        self.assertLess(gradcheck.rel_error(g, 3 * x**2), 1e-7)

    def test_bad_input_raises(self):
        with self.assertRaisesRegex(ValueError, "scalar"):
            gradcheck.numerical_grad(jnp.sin, np.ones(3))
        with self.assertRaisesRegex(ValueError, "floating"):
            gradcheck.numerical_grad(_f, np.arange(3))


class CheckGradsTest(parameterized.TestCase):
    def test_correct_gradient_passes(self):
        self.assertLess(gradcheck.check_grads(_f, _randn(0, 5)), 1e-7)
        self.assertLess(gradcheck.check_grads(_scaled_vjp(1.0), _randn(0, 5)), 1e-7)

    @parameterized.parameters(1.01, 1 + 1e-5)
    def test_wrong_gradient_raises_naming_the_entry(self, scale):
        # A relative bug of s - 1 gives rel_error ~ (s - 1)/2: 1e-5 is still 50x above tol.
        with self.assertRaisesRegex(AssertionError, r"relative error .* > tol 1\.0e-07 \(leaf"):
            gradcheck.check_grads(lambda x: jnp.sum(_scaled_vjp(scale)(x)), _randn(0, 5))

    def test_non_scalar_output_is_contracted_with_a_random_cotangent(self):
        x = _randn(1, 4)

        def two_outputs(v):
            wrong = _scaled_vjp(1.01)(v[1:2])  # only one output entry has a bad VJP
            return {"good": jnp.tanh(v), "bad": wrong}

        self.assertLess(gradcheck.check_grads(lambda v: two_outputs(v)["good"], x), 1e-7)
        with self.assertRaisesRegex(AssertionError, "index \\(1,\\)"):
            gradcheck.check_grads(two_outputs, x)

    def test_argnums_and_non_differentiated_arguments(self):
        def f(w, x, n):
            return jnp.tanh(x @ w) * n

        w, x = _randn(0, 3, 2), _randn(1, 4, 3)
        for argnums in (0, 1, (0, 1), -3):
            self.assertLess(gradcheck.check_grads(f, w, x, 2, argnums=argnums), 1e-7)
        with self.assertRaisesRegex(ValueError, "`argnums`"):
            gradcheck.check_grads(f, w, x, 2, argnums=3)
        with self.assertRaisesRegex(ValueError, "floating"):
            gradcheck.check_grads(f, w, x, 2, argnums=2)

    def test_sparse_check(self):
        x = _randn(2, 40, 30)
        good = gradcheck.sparse_grad_check(_f, x, num_checks=8, seed=3)
        self.assertLess(good, 1e-7)
        self.assertEqual(good, gradcheck.sparse_grad_check(_f, x, num_checks=8, seed=3))  # same seed, same coordinates
        bad = gradcheck.sparse_grad_check(lambda v: jnp.sum(_scaled_vjp(1.01)(v)), x, num_checks=8)
        self.assertGreater(bad, 1e-3)
        self.assertLess(gradcheck.check_grads(jnp.tanh, x, num_checks=8), 1e-7)
        with self.assertRaisesRegex(AssertionError, "8 random coordinates"):
            gradcheck.check_grads(_scaled_vjp(1.01), x, num_checks=8)


if __name__ == "__main__":
    absltest.main()
