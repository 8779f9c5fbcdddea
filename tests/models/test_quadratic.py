"""DeepOBS quadratic_deep: the Hessian's spectrum and rotation, the model+loss against the formula."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import losses, models


def test_hessian_spectrum_is_deepobs_draw():
    problem = models.deep_quadratic_hessian()
    eig = problem.eigenvalues
    # The docstring's claim: 90 eigenvalues in (0, 1), then 10 in (30, 60), drawn from RandomState(42) first.
    assert eig.shape == (100,)
    assert np.all((eig[:90] > 0) & (eig[:90] < 1)) and np.all((eig[90:] > 30) & (eig[90:] < 60))
    rng = np.random.RandomState(42)
    np.testing.assert_array_equal(eig[:90], rng.uniform(0, 1, 90))
    np.testing.assert_array_equal(eig[90:], rng.uniform(30, 60, 10))
    # Q = R^T diag(eig) R: symmetric, its eigenvalues (float64 eigh) are the drawn ones to 1e-10.
    q = problem.hessian
    np.testing.assert_allclose(q, q.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(q), np.sort(eig), atol=1e-10)
    r = problem.rotation
    np.testing.assert_allclose(r @ r.T, np.eye(100), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-9)  # SO(100), not just O(100)
    assert np.linalg.cond(q) > 1000  # ill-conditioned (the smallest draw is ~5.5e-3)


def test_haar_rotation_is_uniform_on_the_sign_of_entries():
    # A Haar rotation's first column is uniform on the sphere: its mean over draws is ~0.
    rng = np.random.RandomState(0)
    cols = np.stack([models.haar_rotation(5, rng)[:, 0] for _ in range(400)])
    np.testing.assert_allclose(np.linalg.norm(cols, axis=1), 1.0, atol=1e-12)
    assert np.abs(cols.mean(axis=0)).max() < 0.12  # 4 standard errors of 1/sqrt(5 * 400)


def test_model_and_residual_loss_equal_the_quadratic_form():
    q = models.deep_quadratic_hessian().hessian
    model = models.noisy_quadratic(hessian=q)
    params, state = model.init(jax.random.key(0), (100,))
    np.testing.assert_array_equal(params["theta"], np.ones(100, np.float32))
    x = np.random.RandomState(1).normal(0, 0.6, (7, 100)).astype(np.float32)
    residual, _ = model.apply(params, state, x, train=True)
    value = losses.residual_loss(logits=residual, labels=jnp.zeros(7, jnp.int32))
    d = 1.0 - x.astype(np.float64)
    expected = 0.5 * np.einsum("ni,ij,nj->n", d, q, d)  # DeepOBS: 0.5 (theta - x)^T Q (theta - x)
    np.testing.assert_allclose(value, expected, rtol=2e-5)  # float32 products over 100 terms
    # Its Hessian in theta is Q (float32 factor: entries agree to ~1e-4 of the largest, 60).
    hess = jax.hessian(
        lambda th: jnp.mean(
            losses.residual_loss(
                logits=model.apply({"theta": th}, {}, x, train=False)[0], labels=jnp.zeros(7, jnp.int32)
            )
        )
    )(params["theta"])
    np.testing.assert_allclose(hess, q, atol=1e-3)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="hessian"):
        models.noisy_quadratic(hessian=np.ones((3, 2)))
    model = models.noisy_quadratic(hessian=np.eye(4))
    with pytest.raises(ValueError, match="input_shape"):
        model.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match="labels"):
        losses.residual_loss(logits=jnp.ones((3, 2)), labels=jnp.zeros(4, jnp.int32))
