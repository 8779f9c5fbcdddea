"""Newton's method, dense BFGS and the max-norm constraint, against SciPy and NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jax231 import optimizers
from jax231.optimizers import _second_order
from tests.test_utils import x64


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _quadratic(n=6, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)  # SPD, condition number modest
    b = rng.standard_normal(n)
    return a, b, lambda x: 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x


def test_newton_solves_a_quadratic_in_one_iteration():
    with x64():
        a, b, fun = _quadratic()
        result = optimizers.newton_minimize(fun, jnp.zeros(6), tol=1e-10)
        # One Newton step x* = A^{-1} b lands on the minimum; the loop then stops on the gradient.
        assert int(result.iterations) == 1
        np.testing.assert_allclose(result.params, np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "minimize, scipy_method",
    [
        (optimizers.newton_minimize, "Newton-CG"),
        (optimizers.bfgs_minimize, "BFGS"),
    ],
)
def test_rosenbrock_minimum_matches_scipy(minimize, scipy_method):
    with x64():
        x0 = np.array([-1.2, 1.0])
        ours = minimize(rosenbrock, jnp.asarray(x0), tol=1e-8)
        grad = jax.jit(jax.grad(rosenbrock))
        hess = jax.jit(jax.hessian(rosenbrock))
        ref = scipy.optimize.minimize(
            lambda x: float(rosenbrock(jnp.asarray(x))),
            x0,
            jac=lambda x: np.asarray(grad(jnp.asarray(x))),
            hess=(lambda x: np.asarray(hess(jnp.asarray(x)))) if scipy_method == "Newton-CG" else None,
            method=scipy_method,
            options={"xtol": 1e-10} if scipy_method == "Newton-CG" else {"gtol": 1e-8},
        )
        assert bool(ours.converged)
        # Both reach the minimum (1, 1); 1e-6 is far above float64 rounding near a
        # minimum whose valley has curvature ratio ~2500.
        np.testing.assert_allclose(ours.params, [1.0, 1.0], atol=1e-6)
        np.testing.assert_allclose(ours.params, ref.x, atol=1e-4)
        # Same family of methods: comparable iteration counts (SciPy: BFGS 32-40,
        # Newton-CG ~80 on this start), never an order of magnitude more.
        assert int(ours.iterations) <= 2 * ref.nit


def test_bfgs_update_satisfies_the_secant_equation_and_stays_symmetric():
    with x64():
        rng = np.random.default_rng(1)
        m = rng.standard_normal((5, 5))
        h = jnp.asarray(m @ m.T + np.eye(5))
        s, y = jnp.asarray(rng.standard_normal(5)), jnp.asarray(rng.standard_normal(5))
        y = jnp.where(jnp.vdot(s, y) > 0, y, -y)  # positive curvature
        new = _second_order.bfgs_inverse_update(h, s, y)
        np.testing.assert_allclose(new @ y, s, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(new, new.T, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(np.asarray(new)) > 0)
        # Negative curvature: the pair is skipped.
        np.testing.assert_array_equal(_second_order.bfgs_inverse_update(h, s, -y), h)


@pytest.mark.parametrize(
    "rule, minimize",
    [
        (optimizers.newton, optimizers.newton_minimize),
        (optimizers.bfgs, optimizers.bfgs_minimize),
    ],
)
def test_update_rule_on_a_pytree_follows_the_minimiser(rule, minimize):
    with x64():

        def fun(p):
            return rosenbrock(jnp.concatenate([p["a"], p["b"]]))

        params = {"a": jnp.array([-1.2]), "b": jnp.array([1.0, 0.5])}
        opt = rule()
        assert opt.needs_objective
        state = opt.init(params)

        @jax.jit
        def step(params, state):
            value, grads = jax.value_and_grad(fun)(params)
            updates, state = opt.update(grads, state, params, value=value, value_fn=fun, unknown_extra=1)
            return optimizers.apply_updates(params, updates), state

        for _ in range(5):
            params, state = step(params, state)
        reference = minimize(fun, {"a": jnp.array([-1.2]), "b": jnp.array([1.0, 0.5])}, max_iters=5, tol=0.0)
        tol = 1e-10  # the same float64 iteration, traced twice
        for key in params:
            np.testing.assert_allclose(params[key], reference.params[key], rtol=tol, atol=tol)


def test_update_rule_without_value_fn_is_a_one_line_error():
    opt = optimizers.bfgs()
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match=r"^value_fn: expected a callable"):
        opt.update(params, opt.init(params), params)


def test_bad_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match=r"^damping: expected a finite value >= 0"):
        optimizers.newton(damping=-1.0)
    with pytest.raises(ValueError, match=r"^tol: expected a finite value >= 0"):
        optimizers.bfgs_minimize(rosenbrock, jnp.zeros(2), tol=-1.0)


# ----------------------------------------------------------------------------- max-norm


def test_project_max_norm_matches_numpy():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 4, 5)).astype(np.float32) * np.array([0.1, 1, 2, 3, 0.5], np.float32)
    norms = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=(0, 1, 2), keepdims=True))
    expected = w * np.minimum(1.0, 2.0 / norms)
    np.testing.assert_allclose(optimizers.project_max_norm(w, 2.0), expected, rtol=1e-6)


def test_max_norm_after_sgd_projects_weights_and_leaves_biases_free():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal((6, 4)), jnp.float32), "b": jnp.zeros(4)}
    grads = {"w": jnp.asarray(rng.standard_normal((6, 4)) * 10, jnp.float32), "b": jnp.full(4, 100.0)}
    opt = optimizers.chain(optimizers.sgd(0.1), optimizers.max_norm(1.5))
    updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
    new = optimizers.apply_updates(params, updates)
    unconstrained = np.asarray(params["w"]) - 0.1 * np.asarray(grads["w"])
    np.testing.assert_allclose(
        new["w"], unconstrained * np.minimum(1.0, 1.5 / np.linalg.norm(unconstrained, axis=0)), rtol=1e-5, atol=1e-6
    )
    assert np.all(np.linalg.norm(np.asarray(new["w"]), axis=0) <= 1.5 * (1 + 1e-6))
    np.testing.assert_allclose(new["b"], -10.0 * np.ones(4), rtol=1e-6)


def test_max_norm_rejects_a_non_positive_radius_and_missing_params():
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^max_norm: expected a finite value > 0"):
            optimizers.max_norm(bad)
    opt = optimizers.max_norm(1.0)
    with pytest.raises(ValueError, match=r"^params: expected the parameters"):
        opt.update({"w": jnp.ones((2, 2))}, opt.init(None))
