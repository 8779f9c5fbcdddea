"""Policy-gradient estimator (unbiased on a bandit), returns, GAE, Huber, entropy: against NumPy/optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import rl


def _bandit_gradients(theta, rewards, baseline, num, key):
    """Per-sample REINFORCE estimates of grad J for a softmax policy over 2 arms with Gaussian rewards."""
    act_key, noise_key = jax.random.split(key)
    actions = jax.random.categorical(act_key, jnp.broadcast_to(theta, (num, 2)))
    returns = jnp.asarray(rewards)[actions] + jax.random.normal(noise_key, (num,))

    def surrogate(theta, a, g):  # minus the estimator of J for one sample
        return rl.policy_gradient_loss(log_probs=rl.log_prob(theta, a), advantages=g - baseline)

    return -jax.vmap(jax.grad(surrogate), in_axes=(None, 0, 0))(theta, actions, returns)


@pytest.mark.parametrize("baseline", [0.0, 1.5])
def test_policy_gradient_estimator_is_unbiased_on_a_two_armed_bandit(baseline):
    theta = jnp.array([0.3, -0.2])
    rewards = np.array([1.0, 2.0])
    pi = np.exp(theta) / np.exp(theta).sum()
    exact = pi * (rewards - pi @ rewards)  # d/dtheta sum_a pi_a r_a for softmax logits
    grads = np.asarray(_bandit_gradients(theta, rewards, baseline, 200_000, jax.random.key(0)), np.float64)
    mean, stderr = grads.mean(0), grads.std(0) / np.sqrt(len(grads))
    assert np.all(np.abs(mean - exact) < 4 * stderr), (mean, exact, stderr)  # 4 standard errors


def test_a_baseline_reduces_the_estimators_variance():
    theta, rewards = jnp.array([0.3, -0.2]), np.array([1.0, 2.0])
    key = jax.random.key(1)
    var_none = np.asarray(_bandit_gradients(theta, rewards, 0.0, 50_000, key)).var(0)
    var_base = np.asarray(_bandit_gradients(theta, rewards, 1.5, 50_000, key)).var(0)  # ~ E[r]
    assert np.all(var_base < 0.5 * var_none)


def _numpy_returns(rewards, dones, gamma, last):
    out, g = np.zeros_like(rewards), last.copy()
    for t in reversed(range(len(rewards))):
        g = rewards[t] + gamma * (1 - dones[t]) * g
        out[t] = g
    return out


def test_discounted_returns_and_gae_match_numpy_loops():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(9, 3)).astype(np.float32)
    values = rng.normal(size=(9, 3)).astype(np.float32)
    dones = rng.random((9, 3)) < 0.25
    last = rng.normal(size=3).astype(np.float32)
    np.testing.assert_allclose(
        rl.discounted_returns(rewards, dones, discount=0.9, bootstrap=last),
        _numpy_returns(rewards, dones, 0.9, last),
        rtol=1e-5,
        atol=1e-5,
    )
    adv, ret = rl.gae_advantages(rewards, values, dones, last, discount=0.9, gae_lambda=0.8)
    next_v = np.concatenate([values[1:], last[None]])
    delta = rewards + 0.9 * (1 - dones) * next_v - values
    ref, a = np.zeros_like(delta), np.zeros(3)
    for t in reversed(range(9)):
        a = delta[t] + 0.9 * 0.8 * (1 - dones[t]) * a
        ref[t] = a
    np.testing.assert_allclose(adv, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref + values, rtol=1e-5, atol=1e-5)
    # lambda = 1: advantages are Monte-Carlo returns minus the values.
    adv1, _ = rl.gae_advantages(rewards, values, dones, last, discount=0.9, gae_lambda=1.0)
    np.testing.assert_allclose(adv1, _numpy_returns(rewards, dones, 0.9, last) - values, rtol=1e-5, atol=1e-5)


def test_huber_matches_optax_and_entropy_matches_numpy():
    errors = jnp.linspace(-4, 4, 41)
    np.testing.assert_allclose(rl.huber_loss(errors, delta=1.5), optax.huber_loss(errors, delta=1.5), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(rl.huber_loss))(errors), np.clip(errors, -1, 1), atol=1e-6)
    logits = np.array([[0.0, 1.0, -2.0], [3.0, 3.0, 3.0]])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(rl.categorical_entropy(logits), -(p * np.log(p)).sum(1), rtol=1e-5)


def test_complete_episode_mask():
    dones = np.array([[0, 0], [1, 0], [0, 1], [0, 0]], bool)
    np.testing.assert_array_equal(rl.complete_episode_mask(dones), [[1, 1], [1, 1], [0, 1], [0, 0]])


def test_bad_discount_and_lambda():
    with pytest.raises(ValueError, match=r"^discount: expected a discount in \[0, 1\), got 1.5$"):
        rl.discounted_returns(np.zeros((2, 1)), np.zeros((2, 1)), discount=1.5)
    with pytest.raises(ValueError, match=r"^gae_lambda: expected a probability in \[0, 1\], got 2$"):
        rl.gae_advantages(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(1), discount=0.9, gae_lambda=2)
