"""gymnax environments by name, with flat float observations and episode bookkeeping.

gymnax (JAX-native classic control, bsuite and MinAtar) steps inside jitted code
and resets automatically: ``env.step`` returns the first observation of the next
episode when one ends, telling termination (no value beyond) from truncation by
the time limit (the last observation still has a value: bootstrap from it). :class:`EpisodeStats` tracks the return of the
episode under way and of the last finished one, per environment.

References:
  Lange, "gymnax: A JAX-based Reinforcement Learning Environment Library", 2022.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnax
import jax
import jax.numpy as jnp

from jax231.types import Array, ArrayLike, PRNGKey

ENV_NAMES = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Breakout-MinAtar",
    "Asterix-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
)
"""gymnax environments with discrete actions that the agents of :mod:`jax231.rl` accept."""

SOLVED_RETURNS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0}
"""Return thresholds at which an environment counts as solved (gym's ``reward_threshold``)."""


class Env(NamedTuple):
    """A gymnax environment with its parameters, observations flattened to float32 vectors.

    Attributes:
      name: the gymnax name.
      env: the gymnax environment object (static).
      params: its ``EnvParams``.
      num_actions: number of discrete actions.
      obs_size: length of the flat observation.
      max_steps: longest episode (``params.max_steps_in_episode``).
    """

    name: str
    env: Any
    params: Any
    num_actions: int
    obs_size: int
    max_steps: int


def make_env(name: str) -> Env:
    """Builds the named gymnax environment.

    Args:
      name: one of :data:`ENV_NAMES`.

    Returns:
      An :class:`Env`.

    Raises:
      ValueError: ``env_name: expected one of ..., got ...`` for an unknown name.
    """
    if name not in ENV_NAMES:
        raise ValueError(f"env_name: expected one of {', '.join(ENV_NAMES)}, got {name!r}")
    env, params = gymnax.make(name)
    shape = env.observation_space(params).shape
    return Env(
        name, env, params, int(env.num_actions), int(jnp.prod(jnp.asarray(shape))), int(params.max_steps_in_episode)
    )


def _flat(obs: ArrayLike) -> Array:
    obs = jnp.asarray(obs, jnp.float32)
    return obs.reshape(obs.shape[0], -1)


def reset(env: Env, rng: PRNGKey, num_envs: int) -> tuple[Array, Any]:
    """Resets ``num_envs`` copies; returns flat observations ``(num_envs, obs_size)`` and states."""
    obs, state = jax.vmap(env.env.reset, in_axes=(0, None))(jax.random.split(rng, num_envs), env.params)
    return _flat(obs), state


class EnvStep(NamedTuple):
    """What :func:`step` returns, batched over the copies.

    Attributes:
      obs: next observations (the first of a new episode where one ended).
      state: next gymnax states.
      reward: float32 rewards.
      terminated: the episode ended in a terminal state (no value beyond it).
      truncated: the episode was cut by the time limit (the state still has a value).
      final_obs: the last observation of the episode that ended (``obs`` elsewhere).
    """

    obs: Array
    state: Any
    reward: Array
    terminated: Array
    truncated: Array
    final_obs: Array

    @property
    def done(self) -> Array:
        """Whether an episode ended (terminated or truncated) and the copy was reset."""
        return self.terminated | self.truncated


def step(env: Env, rng: PRNGKey, state: Any, actions: ArrayLike) -> EnvStep:
    """Steps every copy (auto-reset); returns an :class:`EnvStep` batched over copies."""
    keys = jax.random.split(rng, jnp.shape(actions)[0])
    obs, state, reward, terminated, truncated, info = jax.vmap(env.env.step, in_axes=(0, 0, 0, None))(
        keys, state, actions, env.params
    )
    return EnvStep(
        _flat(obs),
        state,
        reward.astype(jnp.float32),
        jnp.asarray(terminated, bool),
        jnp.asarray(truncated, bool) & ~jnp.asarray(terminated, bool),
        _flat(info["final_observation"]),
    )


class EpisodeStats(NamedTuple):
    """Per-environment return bookkeeping.

    Attributes:
      current: return of the episode under way, ``(num_envs,)``.
      finished_sum: sum of the returns of episodes finished since the last read.
      finished_count: how many episodes finished since the last read.
    """

    current: Array
    finished_sum: Array
    finished_count: Array


def init_stats(num_envs: int) -> EpisodeStats:
    """Zero bookkeeping for ``num_envs`` environments."""
    return EpisodeStats(jnp.zeros(num_envs), jnp.zeros(()), jnp.zeros((), jnp.int32))


def update_stats(stats: EpisodeStats, reward: Array, done: Array) -> EpisodeStats:
    """Adds one step's rewards; finished episodes move to the finished sum."""
    current = stats.current + reward
    return EpisodeStats(
        current=jnp.where(done, 0.0, current),
        finished_sum=stats.finished_sum + jnp.sum(jnp.where(done, current, 0.0)),
        finished_count=stats.finished_count + jnp.sum(done.astype(jnp.int32)),
    )


def evaluate(env: Env, rng: PRNGKey, policy: Any, *, num_episodes: int = 10) -> Array:
    """Mean undiscounted return of ``policy`` over ``num_episodes`` episodes (one per copy).

    Runs ``env.max_steps`` steps; each copy's reward counts until its first ``done``.

    Args:
      env: the environment.
      rng: a random key.
      policy: ``policy(rng, obs (N, obs_size)) -> actions (N,)``.
      num_episodes: parallel copies, one episode each.

    Returns:
      The mean return (a scalar).
    """
    reset_key, run_key = jax.random.split(rng)
    obs, state = reset(env, reset_key, num_episodes)

    def body(carry, key):
        obs, state, total, alive = carry
        act_key, step_key = jax.random.split(key)
        out = step(env, step_key, state, policy(act_key, obs))
        return (out.obs, out.state, total + out.reward * alive, alive & ~out.done), None

    init = (obs, state, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool))
    (_, _, total, _), _ = jax.lax.scan(body, init, jax.random.split(run_key, env.max_steps))
    return jnp.mean(total)
