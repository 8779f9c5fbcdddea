"""Deep Q-learning (DQN): experience replay, a target network, epsilon-greedy, Huber loss.

Each iteration steps ``num_envs`` environments once with an epsilon-greedy
policy, stores the transitions in the replay buffer, then (once
``learning_starts`` steps are stored) makes ``updates_per_iteration`` gradient
steps on minibatches drawn from the buffer, minimising

.. math:: L(\\theta) = \\mathbb{E}_{(s,a,r,s',d)\\sim\\mathcal{D}}\\,
          \\mathrm{huber}\\big(Q_\\theta(s,a) - [r + \\gamma (1 - d)\\,
          Q_{\\theta^-}(s', \\arg\\max_{a'} Q_{\\cdot}(s', a'))]\\big)

where ``theta^-`` are the target network's parameters, copied from ``theta``
every ``target_update_every`` iterations, and the inner argmax uses
``theta`` (double DQN, ``double=True``) or ``theta^-`` (the Nature DQN).

References:
  Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015;
  van Hasselt, Guez & Silver, "Deep reinforcement learning with double Q-learning", AAAI 2016;
  CS231n lecture 14 (2017), "Deep Q-learning", "Experience replay".
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jax231 import models, optimizers
from jax231.rl import _checks, _envs, _parts
from jax231.rl._exploration import epsilon_greedy, linear_epsilon
from jax231.rl._losses import huber_loss
from jax231.rl._replay import ReplayBuffer, replay_add, replay_init, replay_sample
from jax231.rl._train import Agent
from jax231.types import Array, OptState, Params, PRNGKey


class DqnConfig(NamedTuple):
    """Options of :func:`dqn` (all static).

    Attributes:
      hidden_sizes: widths of the Q-network's ReLU hidden layers.
      num_envs: environments stepped in parallel per iteration.
      buffer_size: replay capacity (transitions), >= batch_size.
      batch_size: transitions per gradient step.
      learning_starts: environment steps stored before the first gradient step.
      updates_per_iteration: gradient steps per iteration.
      target_update_every: iterations between copies of the online into the target network.
      discount: ``gamma`` in [0, 1).
      epsilon_start: exploration probability at the start, in [0, 1].
      epsilon_end: exploration probability after the annealing, in [0, 1].
      epsilon_steps: environment steps over which epsilon is annealed linearly.
      huber_delta: where the Huber loss turns linear.
      max_grad_norm: clip the gradient's global norm to this (0 = no clipping).
      double: double DQN (the online network picks the next action).
    """

    hidden_sizes: Sequence[int] = (64, 64)
    num_envs: int = 4
    buffer_size: int = 50_000
    batch_size: int = 64
    learning_starts: int = 1_000
    updates_per_iteration: int = 1
    target_update_every: int = 250
    discount: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_steps: int = 20_000
    huber_delta: float = 1.0
    max_grad_norm: float = 10.0
    double: bool = True


class Transition(NamedTuple):
    """One stored transition ``(s, a, r, s', done)``."""

    obs: Array
    action: Array
    reward: Array
    next_obs: Array
    done: Array


class DqnCarry(NamedTuple):
    """The state of a DQN run, carried through the training scan.

    Attributes:
      params: online Q-network parameters ``theta``.
      target_params: target-network parameters ``theta^-``.
      opt_state: optimizer state (hyperparameters inside).
      buffer: the replay buffer.
      env_state: gymnax states of the ``num_envs`` environments.
      obs: their current observations.
      stats: training-episode bookkeeping.
      rng: random key.
      iteration: int32 scalar, iterations done.
    """

    params: Params
    target_params: Params
    opt_state: OptState
    buffer: ReplayBuffer
    env_state: Any
    obs: Array
    stats: _envs.EpisodeStats
    rng: PRNGKey
    iteration: Array


def check_dqn_config(config: DqnConfig) -> DqnConfig:
    """Validates every field; returns ``config``."""
    for name in (
        "num_envs",
        "buffer_size",
        "batch_size",
        "updates_per_iteration",
        "target_update_every",
        "epsilon_steps",
    ):
        _checks.check_positive_int(name, getattr(config, name))
    _checks.check_non_negative_int("learning_starts", config.learning_starts)
    _checks.check_discount("discount", config.discount)
    _checks.check_probability("epsilon_start", config.epsilon_start)
    _checks.check_probability("epsilon_end", config.epsilon_end)
    _checks.check_positive("huber_delta", config.huber_delta)
    if config.buffer_size < config.batch_size:
        raise ValueError(
            f"buffer_size: expected a buffer at least as large as batch_size={config.batch_size}, "
            f"got {config.buffer_size}"
        )
    return config


def dqn(env: _envs.Env, optimizer: optimizers.GradientTransformation, config: DqnConfig | None = None) -> Agent:
    """A DQN :class:`~jax231.rl.Agent` on ``env`` trained with ``optimizer``.

    Args:
      env: a discrete-action environment (:func:`~jax231.rl.make_env`).
      optimizer: any jax231 optimizer (RMSProp in the Nature paper); gradients are
        clipped first when ``config.max_grad_norm`` > 0.
      config: the :class:`DqnConfig` (``None``: the defaults).

    Returns:
      The agent; its ``init(rng, hyperparams)`` sets ``hyperparams`` in the optimizer state.
    """
    config = check_dqn_config(DqnConfig() if config is None else config)
    network = models.mlp(hidden_sizes=config.hidden_sizes, num_classes=env.num_actions, name="q_network")
    optimizer = _parts.with_grad_clipping(optimizer, config.max_grad_norm)
    epsilon = linear_epsilon(config.epsilon_start, config.epsilon_end, steps=config.epsilon_steps)

    def q_values(params: Params, obs: Array) -> Array:
        return network.apply(params, {}, obs, train=False)[0]

    def init(rng: PRNGKey, hyperparams: Mapping[str, Array]) -> DqnCarry:
        net_key, env_key, rng = jax.random.split(rng, 3)
        params, _ = network.init(net_key, (env.obs_size,))
        opt_state = _parts.init_optimizer(optimizer, params, hyperparams)
        obs, env_state = _envs.reset(env, env_key, config.num_envs)
        example = Transition(obs[0], jnp.int32(0), jnp.float32(0), obs[0], jnp.bool_(False))
        buffer = replay_init(example, config.buffer_size, batch_size=config.batch_size)
        return DqnCarry(
            params, params, opt_state, buffer, env_state, obs, _envs.init_stats(config.num_envs), rng, jnp.int32(0)
        )

    def loss_fn(params: Params, target_params: Params, batch: Transition) -> tuple[Array, Array]:
        q = q_values(params, batch.obs)
        q_taken = jnp.take_along_axis(q, batch.action[:, None], axis=1)[:, 0]
        q_next_target = q_values(target_params, batch.next_obs)
        chooser = q_values(params, batch.next_obs) if config.double else q_next_target
        next_action = jnp.argmax(chooser, axis=1)
        q_next = jnp.take_along_axis(q_next_target, next_action[:, None], axis=1)[:, 0]
        target = batch.reward + config.discount * (1.0 - batch.done) * q_next
        errors = q_taken - jax.lax.stop_gradient(target)
        return huber_loss(errors, delta=config.huber_delta).mean(), q_taken.mean()

    def gradient_step(carry: tuple, key: PRNGKey) -> tuple[tuple, tuple]:
        params, opt_state, target_params, buffer = carry
        batch = replay_sample(buffer, key, config.batch_size)
        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, target_params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optimizers.apply_updates(params, updates), opt_state, target_params, buffer), (loss, q_mean)

    def update(carry: DqnCarry) -> tuple[DqnCarry, dict[str, Array]]:
        rng, act_key, step_key, learn_key = jax.random.split(carry.rng, 4)
        env_steps = carry.iteration * config.num_envs
        # 1. act epsilon-greedily in every environment and store the transitions
        eps = epsilon(env_steps)
        actions = epsilon_greedy(act_key, q_values(carry.params, carry.obs), eps)
        out = _envs.step(env, step_key, carry.env_state, actions)
        # a truncated episode bootstraps from its last observation; only termination stops the target
        buffer = replay_add(carry.buffer, Transition(carry.obs, actions, out.reward, out.final_obs, out.terminated))
        stats = _envs.update_stats(carry.stats, out.reward, out.done)
        # 2. gradient steps on replayed minibatches, once learning has started
        learning = env_steps + config.num_envs >= config.learning_starts
        (params, opt_state, _, _), (loss, q_mean) = jax.lax.scan(
            gradient_step,
            (carry.params, carry.opt_state, carry.target_params, buffer),
            jax.random.split(learn_key, config.updates_per_iteration),
        )
        keep = lambda new, old: jax.tree_util.tree_map(lambda n, o: jnp.where(learning, n, o), new, old)
        params, opt_state = keep(params, carry.params), keep(opt_state, carry.opt_state)
        # 3. copy the online network into the target network every target_update_every iterations
        iteration = carry.iteration + 1
        copy = iteration % config.target_update_every == 0
        target_params = jax.tree_util.tree_map(lambda p, t: jnp.where(copy, p, t), params, carry.target_params)
        metrics = {
            "loss": jnp.where(learning, loss.mean(), jnp.nan),
            "q_mean": q_mean.mean(),
            "epsilon": eps,
            "episode_return": stats.finished_sum,
            "episodes": stats.finished_count,
        }
        stats = stats._replace(finished_sum=jnp.zeros(()), finished_count=jnp.zeros((), jnp.int32))
        new = DqnCarry(params, target_params, opt_state, buffer, out.state, out.obs, stats, rng, iteration)
        return new, metrics

    def policy(carry: DqnCarry):
        return lambda rng, obs: jnp.argmax(q_values(carry.params, obs), axis=1).astype(jnp.int32)

    return Agent("dqn", env, init, update, policy, config.num_envs)
