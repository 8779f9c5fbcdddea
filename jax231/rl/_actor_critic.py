"""Actor-critic agents: A2C and PPO, one rollout and one loss with two settings.

Each iteration runs the stochastic policy ``pi_theta`` for ``num_steps`` steps in
``num_envs`` environments, computes GAE(lambda) advantages ``A_t`` with the
critic ``V_phi``, and minimises over ``num_epochs`` passes of
``num_minibatches`` minibatches

.. math:: L = \\mathbb{E}_t\\big[-\\min(\\rho_t A_t, \\mathrm{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)
          + c_v \\tfrac12 (V_\\phi(s_t) - R_t)^2 - c_e H(\\pi_\\theta(\\cdot|s_t))\\big]

with ``rho_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)`` and ``R_t = A_t + V_old(s_t)``.
PPO is ``clip_eps > 0`` with several epochs. A2C is one epoch, one minibatch and
no clipping: the policy term is then ``-log pi_theta(a_t|s_t) A_t``, whose
gradient equals the clipped surrogate's at ``rho = 1``. A truncated episode
(time limit) adds ``gamma V(s_last)`` to its last reward, so it is not mistaken
for a terminal state.

References:
  Mnih et al., "Asynchronous methods for deep reinforcement learning", ICML 2016 (A3C/A2C);
  Schulman et al., "Proximal policy optimization algorithms", 2017;
  CS231n lecture 14 (2017), "Actor-critic algorithm".
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jax231 import optimizers
from jax231.rl import _checks, _envs, _parts
from jax231.rl._losses import categorical_entropy, log_prob, policy_gradient_loss
from jax231.rl._returns import gae_advantages
from jax231.rl._train import Agent
from jax231.types import Array, OptState, Params, PRNGKey


class ActorCriticConfig(NamedTuple):
    """Options of :func:`actor_critic` (all static); defaults are A2C's.

    Attributes:
      hidden_sizes: widths of the hidden layers of the actor and of the critic (separate networks).
      activation: their activation (tanh, as in PPO's reference code).
      num_envs: environments stepped in parallel.
      num_steps: rollout length per environment and iteration.
      num_epochs: passes over each rollout.
      num_minibatches: minibatches per pass.
      clip_eps: PPO's ratio clipping ``epsilon`` (0 = plain policy gradient, A2C).
      discount: ``gamma`` in [0, 1).
      gae_lambda: GAE's ``lambda`` in [0, 1].
      value_coef: ``c_v``.
      entropy_coef: ``c_e``.
      max_grad_norm: clip the gradient's global norm to this (0 = no clipping).
      normalize_advantages: standardise advantages within each minibatch.
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    num_envs: int = 16
    num_steps: int = 16
    num_epochs: int = 1
    num_minibatches: int = 1
    clip_eps: float = 0.0
    discount: float = 0.99
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True


PPO_CONFIG = ActorCriticConfig(num_envs=8, num_steps=128, num_epochs=4, num_minibatches=4, clip_eps=0.2)
"""PPO's settings (PureJaxRL's CartPole configuration, 8 environments)."""


class Rollout(NamedTuple):
    """A time-major ``(T, N)`` rollout of the stochastic policy."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    reward: Array
    done: Array


class ActorCriticCarry(NamedTuple):
    """The state of an actor-critic run.

    Attributes:
      params: ``{'actor': ..., 'critic': ...}``.
      opt_state: optimizer state (hyperparameters inside).
      env_state: gymnax states of the environments.
      obs: their current observations.
      stats: training-episode bookkeeping.
      rng: random key.
    """

    params: Params
    opt_state: OptState
    env_state: Any
    obs: Array
    stats: _envs.EpisodeStats
    rng: PRNGKey


def check_actor_critic_config(config: ActorCriticConfig) -> ActorCriticConfig:
    """Validates every field; returns ``config``."""
    for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches"):
        _checks.check_positive_int(name, getattr(config, name))
    _checks.check_discount("discount", config.discount)
    _checks.check_probability("gae_lambda", config.gae_lambda)
    if (config.num_envs * config.num_steps) % config.num_minibatches:
        raise ValueError(
            f"num_minibatches: expected a divisor of num_envs x num_steps = "
            f"{config.num_envs * config.num_steps}, got {config.num_minibatches}"
        )
    return config


def actor_critic(
    env: _envs.Env,
    optimizer: optimizers.GradientTransformation,
    config: ActorCriticConfig | None = None,
    *,
    name: str = "a2c",
) -> Agent:
    """An A2C or PPO :class:`~jax231.rl.Agent` (see the module docstring).

    Args:
      env: a discrete-action environment.
      optimizer: any jax231 optimizer, for actor and critic together.
      config: the :class:`ActorCriticConfig` (``None``: A2C's defaults; ``PPO_CONFIG`` for PPO).
      name: the agent's name in reports.

    Returns:
      The agent; its evaluation policy is the greedy action of the actor.
    """
    config = check_actor_critic_config(ActorCriticConfig() if config is None else config)
    actor, critic = _parts.policy_and_value_mlps(env, config.hidden_sizes, config.activation, names=("actor", "critic"))
    optimizer = _parts.with_grad_clipping(optimizer, config.max_grad_norm)
    batch = config.num_envs * config.num_steps
    minibatch = batch // config.num_minibatches

    def logits_fn(params: Params, obs: Array) -> Array:
        return actor.apply(params["actor"], {}, obs, train=False)[0]

    def value_fn(params: Params, obs: Array) -> Array:
        return critic.apply(params["critic"], {}, obs, train=False)[0][..., 0]

    def init(rng: PRNGKey, hyperparams: Mapping[str, Array]) -> ActorCriticCarry:
        actor_key, critic_key, env_key, rng = jax.random.split(rng, 4)
        params = {
            "actor": actor.init(actor_key, (env.obs_size,))[0],
            "critic": critic.init(critic_key, (env.obs_size,))[0],
        }
        opt_state = _parts.init_optimizer(optimizer, params, hyperparams)
        obs, env_state = _envs.reset(env, env_key, config.num_envs)
        return ActorCriticCarry(params, opt_state, env_state, obs, _envs.init_stats(config.num_envs), rng)

    def env_step(carry: tuple, key: PRNGKey) -> tuple[tuple, Rollout]:
        params, env_state, obs, stats = carry
        act_key, step_key = jax.random.split(key)
        logits = logits_fn(params, obs)
        action = jax.random.categorical(act_key, logits).astype(jnp.int32)
        value = value_fn(params, obs)
        out = _envs.step(env, step_key, env_state, action)
        reward = out.reward + config.discount * out.truncated * value_fn(params, out.final_obs)
        stats = _envs.update_stats(stats, out.reward, out.done)
        return (params, out.state, out.obs, stats), Rollout(
            obs, action, log_prob(logits, action), value, reward, out.done
        )

    def loss_fn(params: Params, data: tuple) -> tuple[Array, dict[str, Array]]:
        rollout, advantages, returns = data
        logits = logits_fn(params, rollout.obs)
        new_log_prob = log_prob(logits, rollout.action)
        if config.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        if config.clip_eps > 0:
            ratio = jnp.exp(new_log_prob - rollout.log_prob)
            clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
            policy_loss = -jnp.minimum(ratio * advantages, clipped * advantages).mean()
        else:
            policy_loss = policy_gradient_loss(log_probs=new_log_prob, advantages=advantages).mean()
        value_loss = 0.5 * jnp.mean((value_fn(params, rollout.obs) - returns) ** 2)
        entropy = categorical_entropy(logits).mean()
        loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
        return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def minibatch_step(carry: tuple, data: tuple) -> tuple[tuple, dict[str, Array]]:
        params, opt_state = carry
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, data)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optimizers.apply_updates(params, updates), opt_state), metrics

    def epoch(carry: tuple, key: PRNGKey, data: tuple) -> tuple[tuple, dict[str, Array]]:
        order = jax.random.permutation(key, batch)
        shuffled = jax.tree_util.tree_map(
            lambda x: x.reshape(batch, *x.shape[2:])[order].reshape(config.num_minibatches, minibatch, *x.shape[2:]),
            data,
        )
        return jax.lax.scan(minibatch_step, carry, shuffled)

    def update(carry: ActorCriticCarry) -> tuple[ActorCriticCarry, dict[str, Array]]:
        rng, rollout_key, epoch_key = jax.random.split(carry.rng, 3)
        # 1. roll the stochastic policy out for num_steps steps in every environment
        (_, env_state, obs, stats), rollout = jax.lax.scan(
            env_step,
            (carry.params, carry.env_state, carry.obs, carry.stats),
            jax.random.split(rollout_key, config.num_steps),
        )
        # 2. GAE(lambda) advantages and the critic's targets, bootstrapped from V(s_T)
        advantages, returns = gae_advantages(
            rollout.reward,
            rollout.value,
            rollout.done,
            value_fn(carry.params, obs),
            discount=config.discount,
            gae_lambda=config.gae_lambda,
        )
        # 3. num_epochs passes of minibatch gradient steps
        (params, opt_state), metrics = jax.lax.scan(
            lambda c, k: epoch(c, k, (rollout, advantages, returns)),
            (carry.params, carry.opt_state),
            jax.random.split(epoch_key, config.num_epochs),
        )
        metrics = {k: v.mean() for k, v in metrics.items()}
        metrics.update(episode_return=stats.finished_sum, episodes=stats.finished_count)
        stats = stats._replace(finished_sum=jnp.zeros(()), finished_count=jnp.zeros((), jnp.int32))
        return ActorCriticCarry(params, opt_state, env_state, obs, stats, rng), metrics

    def policy(carry: ActorCriticCarry):
        return lambda rng, obs: jnp.argmax(logits_fn(carry.params, obs), axis=1).astype(jnp.int32)

    return Agent(name, env, init, update, policy, batch)


def a2c(env: _envs.Env, optimizer: optimizers.GradientTransformation, config: ActorCriticConfig | None = None) -> Agent:
    """Advantage actor-critic (synchronous A3C): :func:`actor_critic` with one epoch, no clipping."""
    config = ActorCriticConfig() if config is None else config
    if config.num_epochs != 1 or config.num_minibatches != 1 or config.clip_eps != 0:
        raise ValueError(
            f"config: expected A2C's num_epochs=1, num_minibatches=1, clip_eps=0, got "
            f"{config.num_epochs}, {config.num_minibatches}, {config.clip_eps}"
        )
    return actor_critic(env, optimizer, config, name="a2c")


def ppo(env: _envs.Env, optimizer: optimizers.GradientTransformation, config: ActorCriticConfig = PPO_CONFIG) -> Agent:
    """Proximal policy optimisation: :func:`actor_critic` with ratio clipping and several epochs."""
    return actor_critic(env, optimizer, config, name="ppo")
