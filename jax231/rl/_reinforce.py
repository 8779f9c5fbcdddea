"""REINFORCE with a learned baseline: Monte-Carlo policy gradient on complete episodes.

Each iteration resets ``num_envs`` environments and runs the stochastic policy
for ``env.max_steps`` steps (the longest episode), so that every copy finishes
at least one episode. Returns-to-go ``G_t`` are computed inside each episode;
steps of an episode still unfinished at the end of the rollout are masked out
(their return is unknown). The policy follows the score-function estimator

.. math:: \\nabla_\\theta J \\approx \\frac1{|\\mathcal{M}|} \\sum_{t\\in\\mathcal{M}}
          \\nabla_\\theta \\log \\pi_\\theta(a_t|s_t)\\,(G_t - b_\\phi(s_t))

and the baseline ``b_phi = V_phi`` regresses ``G_t`` (``c_v (V - G)^2 / 2``),
reducing the variance without biasing the estimator.

References:
  Williams, Machine Learning 1992; CS231n lecture 14 (2017), "REINFORCE algorithm",
  "Variance reduction: baseline".
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jax231 import optimizers
from jax231.rl import _checks, _envs, _parts
from jax231.rl._losses import categorical_entropy, log_prob, policy_gradient_loss
from jax231.rl._returns import discounted_returns
from jax231.rl._train import Agent
from jax231.types import Array, OptState, Params, PRNGKey


class ReinforceConfig(NamedTuple):
    """Options of :func:`reinforce` (all static).

    Attributes:
      hidden_sizes: widths of the hidden layers of the policy and of the baseline.
      activation: their activation.
      num_envs: episodes rolled out in parallel per iteration.
      discount: ``gamma`` in [0, 1).
      value_coef: weight ``c_v`` of the baseline's regression loss.
      entropy_coef: entropy bonus (0 = the plain estimator).
      normalize_advantages: standardise ``G - b`` over the batch (a further variance reduction).
      max_grad_norm: clip the gradient's global norm to this (0 = no clipping).
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    num_envs: int = 8
    discount: float = 0.99
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantages: bool = True
    max_grad_norm: float = 0.5


class ReinforceCarry(NamedTuple):
    """The state of a REINFORCE run: ``params`` ``{'policy', 'baseline'}``, optimizer state, key."""

    params: Params
    opt_state: OptState
    rng: PRNGKey


def complete_episode_mask(dones: Array) -> Array:
    """``mask[t, n]``: whether step ``t`` belongs to an episode of copy ``n`` that ends within the rollout."""
    return jax.lax.cummax(dones.astype(jnp.int32), axis=0, reverse=True).astype(bool)


def reinforce(
    env: _envs.Env, optimizer: optimizers.GradientTransformation, config: ReinforceConfig | None = None
) -> Agent:
    """A REINFORCE-with-baseline :class:`~jax231.rl.Agent` (see the module docstring; ``None``: default config)."""
    config = ReinforceConfig() if config is None else config
    _checks.check_positive_int("num_envs", config.num_envs)
    _checks.check_discount("discount", config.discount)
    policy_net, baseline_net = _parts.policy_and_value_mlps(
        env, config.hidden_sizes, config.activation, names=("policy", "baseline")
    )
    optimizer = _parts.with_grad_clipping(optimizer, config.max_grad_norm)

    def logits_fn(params: Params, obs: Array) -> Array:
        return policy_net.apply(params["policy"], {}, obs, train=False)[0]

    def init(rng: PRNGKey, hyperparams: Mapping[str, Array]) -> ReinforceCarry:
        policy_key, baseline_key, rng = jax.random.split(rng, 3)
        params = {
            "policy": policy_net.init(policy_key, (env.obs_size,))[0],
            "baseline": baseline_net.init(baseline_key, (env.obs_size,))[0],
        }
        opt_state = _parts.init_optimizer(optimizer, params, hyperparams)
        return ReinforceCarry(params, opt_state, rng)

    def rollout(params: Params, rng: PRNGKey) -> tuple[Array, Array, Array, Array]:
        reset_key, run_key = jax.random.split(rng)
        obs, state = _envs.reset(env, reset_key, config.num_envs)

        def body(carry, key):
            obs, state = carry
            act_key, step_key = jax.random.split(key)
            action = jax.random.categorical(act_key, logits_fn(params, obs)).astype(jnp.int32)
            out = _envs.step(env, step_key, state, action)
            return (out.obs, out.state), (obs, action, out.reward, out.done)

        _, data = jax.lax.scan(body, (obs, state), jax.random.split(run_key, env.max_steps))
        return data

    def loss_fn(params: Params, data: tuple) -> tuple[Array, dict[str, Array]]:
        # time-major (T, N) rollout -> T N samples (the networks take (batch, obs_size))
        obs, actions, returns, mask = (x.reshape(-1, *x.shape[2:]) for x in data)
        weights = mask / jnp.maximum(mask.sum(), 1.0)
        baseline = baseline_net.apply(params["baseline"], {}, obs, train=False)[0][..., 0]
        advantages = returns - baseline
        if config.normalize_advantages:
            mean = jnp.sum(weights * advantages)
            std = jnp.sqrt(jnp.sum(weights * (advantages - mean) ** 2))
            advantages = (advantages - mean) / (std + 1e-8)
        logits = logits_fn(params, obs)
        policy_loss = jnp.sum(
            weights * policy_gradient_loss(log_probs=log_prob(logits, actions), advantages=advantages)
        )
        baseline_loss = 0.5 * jnp.sum(weights * (baseline - returns) ** 2)
        entropy = jnp.sum(weights * categorical_entropy(logits))
        loss = policy_loss + config.value_coef * baseline_loss - config.entropy_coef * entropy
        return loss, {"policy_loss": policy_loss, "value_loss": baseline_loss, "entropy": entropy}

    def update(carry: ReinforceCarry) -> tuple[ReinforceCarry, dict[str, Array]]:
        rng, rollout_key = jax.random.split(carry.rng)
        # 1. complete episodes from fresh resets; 2. returns-to-go inside each episode
        obs, actions, rewards, dones = rollout(carry.params, rollout_key)
        returns = discounted_returns(rewards, dones, discount=config.discount)
        mask = complete_episode_mask(dones)
        # 3. one gradient step on the policy-gradient surrogate plus the baseline's regression
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(carry.params, (obs, actions, returns, mask))
        updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
        # training episodes: the complete ones (undiscounted returns)
        metrics.update(episode_return=jnp.sum(rewards * mask), episodes=jnp.sum(dones.astype(jnp.int32)))
        return ReinforceCarry(optimizers.apply_updates(carry.params, updates), opt_state, rng), metrics

    def policy(carry: ReinforceCarry):
        return lambda rng, obs: jnp.argmax(logits_fn(carry.params, obs), axis=1).astype(jnp.int32)

    return Agent("reinforce", env, init, update, policy, config.num_envs * env.max_steps)
