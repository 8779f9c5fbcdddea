"""Binary logistic (sigmoid cross-entropy) and least-squares losses, against optax and NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import gradcheck, losses


def test_sigmoid_binary_cross_entropy_matches_optax_and_the_numpy_formula():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((8, 3)) * 5
    labels = rng.uniform(size=(8, 3))  # soft labels are allowed
    ours = losses.sigmoid_binary_cross_entropy(logits=jnp.asarray(logits, jnp.float32), labels=labels)
    np.testing.assert_allclose(ours, optax.sigmoid_binary_cross_entropy(logits, labels), rtol=1e-5, atol=1e-6)
    sigma = 1.0 / (1.0 + np.exp(-logits))
    expected = -labels * np.log(sigma) - (1 - labels) * np.log(1 - sigma)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_sigmoid_binary_cross_entropy_is_finite_for_huge_logits():
    logits = jnp.array([-1e4, -50.0, 50.0, 1e4])
    labels = jnp.array([0.0, 1.0, 0.0, 1.0])
    out = losses.sigmoid_binary_cross_entropy(logits=logits, labels=labels)
    # The stable form gives ~0 for confident right answers and |s| for confident wrong ones.
    np.testing.assert_allclose(out, [0.0, 50.0, 50.0, 0.0], atol=1e-6)


def test_sigmoid_binary_cross_entropy_gradient_is_sigma_minus_y():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal(6), rng.integers(0, 2, 6).astype(np.float64)
    gradcheck.check_grads(lambda s: losses.sigmoid_binary_cross_entropy(logits=s, labels=labels).sum(), logits)

    grad = jax.grad(lambda s: losses.sigmoid_binary_cross_entropy(logits=s, labels=labels).sum())(logits)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-logits)) - labels, rtol=1e-5)


@pytest.mark.parametrize("shape", [(7,), (7, 3), (2, 5, 4)])
def test_squared_loss_matches_optax_squared_error_summed(shape):
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    ours = losses.squared_loss(logits=jnp.asarray(pred, jnp.float32), labels=target)
    expected = optax.squared_error(pred, target)
    expected = expected if len(shape) == 1 else expected.sum(-1)
    assert ours.shape == (shape if len(shape) == 1 else shape[:-1])
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    gradcheck.check_grads(lambda p: losses.squared_loss(logits=p, labels=target), pred)


def test_binary_and_regression_losses_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"^labels: expected the shape of logits"):
        losses.sigmoid_binary_cross_entropy(logits=jnp.zeros(3), labels=jnp.zeros(4))
    with pytest.raises(ValueError, match=r"^logits: expected a floating array"):
        losses.squared_loss(logits=jnp.zeros(3, jnp.int32), labels=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"^logits: expected shape"):
        losses.squared_loss(logits=jnp.zeros(()), labels=jnp.zeros(()))
