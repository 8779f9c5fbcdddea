"""One training driver for every agent: the whole run is one jitted program.

An :class:`Agent` says how to start (``init``), how to make one training
iteration (``update``: environment steps, buffer, gradient steps) and how to act
when evaluated (``policy``). :func:`make_train` turns it into
``train(rng, hyperparams) -> TrainResult``: an outer scan over evaluations
whose body is an inner scan of ``update`` followed by an evaluation of the
policy, both :func:`jax231.training.run_steps` (the training core's one
primitive for algorithm loops); :func:`train_many` ``vmap``s it over seeds and over
optimizer hyperparameters (set in the optimizer state with
``jax231.optimizers.set_hyperparams``), so that many agents train in one program.

References:
  Lu et al., "Discovered Policy Optimisation", NeurIPS 2022 (PureJaxRL: the
  environment and the agent in one jitted, vmapped program).
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231.rl import _checks
from jax231.rl._envs import Env, evaluate
from jax231.training import run_steps
from jax231.types import Array, ArrayLike, PRNGKey, PyTree

Carry = PyTree
Policy = Callable[[PRNGKey, Array], Array]


class Agent(NamedTuple):
    """A training algorithm bound to an environment, as pure functions.

    Attributes:
      name: the algorithm's name (for reports).
      env: the :class:`~jax231.rl.Env` it trains on.
      init: ``init(rng, hyperparams) -> carry``; ``hyperparams`` (a dict of scalars,
        possibly traced) go into the optimizer state through ``set_hyperparams``.
      update: ``update(carry) -> (carry, metrics)``, one training iteration;
        ``metrics`` is a dict of scalars (``episode_return`` / ``episodes``: the sum
        and number of the training episodes finished in the iteration).
      policy: ``policy(carry) -> (rng, obs) -> actions``, the evaluation policy.
      steps_per_iteration: environment steps of one ``update`` (all copies together).
    """

    name: str
    env: Env
    init: Callable[[PRNGKey, Mapping[str, Array]], Carry]
    update: Callable[[Carry], tuple[Carry, dict[str, Array]]]
    policy: Callable[[Carry], Policy]
    steps_per_iteration: int


class TrainResult(NamedTuple):
    """What one training run returns (leading axes added by :func:`train_many`).

    Attributes:
      carry: the final carry (parameters, optimizer and buffer states, ...).
      env_steps: int ``(num_evals,)``, environment steps made at each evaluation.
      eval_return: ``(num_evals,)``, mean return of the evaluation policy.
      train_return: ``(num_evals,)``, mean return of the training episodes finished
        since the previous evaluation (NaN when none finished).
      metrics: dict of ``(num_evals,)`` means of the other per-iteration metrics.
    """

    carry: Carry
    env_steps: Array
    eval_return: Array
    train_return: Array
    metrics: dict[str, Array]


def schedule_lengths(agent: Agent, total_steps: int, num_evals: int) -> tuple[int, int]:
    """``(iterations per evaluation, env steps per evaluation)`` for a budget of ``total_steps``."""
    total_steps = _checks.check_positive_int("total_steps", total_steps)
    num_evals = _checks.check_positive_int("num_evals", num_evals)
    chunk = total_steps // (agent.steps_per_iteration * num_evals)
    if chunk < 1:
        raise ValueError(
            f"total_steps: expected at least num_evals x steps_per_iteration = "
            f"{num_evals * agent.steps_per_iteration}, got {total_steps}"
        )
    return chunk, chunk * agent.steps_per_iteration


def make_train(
    agent: Agent,
    *,
    total_steps: int,
    num_evals: int = 20,
    eval_episodes: int = 10,
    on_evaluation: Callable[[Array], None] | None = None,
) -> Callable[[PRNGKey, Mapping[str, Array]], TrainResult]:
    """The whole training run of ``agent`` as one pure function (jit it, vmap it).

    Args:
      agent: the :class:`Agent`.
      total_steps: environment-step budget (rounded down to whole evaluation chunks).
      num_evals: evaluations, evenly spaced; the last one is at the end of training.
      eval_episodes: episodes per evaluation.
      on_evaluation: host callback ``f(index)`` after each evaluation (a progress
        bar); through ``jax.debug.callback``, so under ``vmap`` it runs once per
        member: make it idempotent per index.

    Returns:
      ``train(rng, hyperparams) -> TrainResult``.
    """
    chunk, steps_per_eval = schedule_lengths(agent, total_steps, num_evals)
    eval_episodes = _checks.check_positive_int("eval_episodes", eval_episodes)

    def train(rng: PRNGKey, hyperparams: Mapping[str, Array]) -> TrainResult:
        init_key, eval_key = jax.random.split(rng)

        def evaluation(carry: Carry, index: Array) -> tuple[Carry, tuple]:
            carry, metrics = run_steps(lambda c, _: agent.update(c), carry, chunk)[:2]
            episodes = metrics.pop("episodes").sum()
            train_return = jnp.where(
                episodes > 0, metrics.pop("episode_return").sum() / jnp.maximum(episodes, 1), jnp.nan
            )
            eval_return = evaluate(
                agent.env, jax.random.fold_in(eval_key, index), agent.policy(carry), num_episodes=eval_episodes
            )
            means = {k: jnp.mean(v) for k, v in metrics.items()}
            if on_evaluation is not None:
                jax.debug.callback(on_evaluation, index)
            return carry, ((index + 1) * steps_per_eval, eval_return, train_return, means)

        carry = agent.init(init_key, hyperparams)
        carry, (steps, eval_return, train_return, metrics) = run_steps(evaluation, carry, num_evals)[:2]
        return TrainResult(carry, steps, eval_return, train_return, metrics)

    return train


def seed_keys(seeds: ArrayLike) -> Array:
    """``jax.random.key(s)`` for every seed ``s`` (the RNG convention of :func:`train_many`)."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))


def check_hyperparams(hyperparams: Mapping[str, ArrayLike] | None) -> dict[str, Array]:
    """The swept values as float32 arrays ``(H,)`` of one common length (``{}`` for none)."""
    values = {k: jnp.asarray(v, jnp.float32) for k, v in (hyperparams or {}).items()}
    shapes = {k: tuple(np.shape(v)) for k, v in values.items()}
    if values and (len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1):
        raise ValueError(f"hyperparams: expected 1-D arrays of one common length, got shapes {shapes}")
    return values


def make_train_many(
    agent: Agent,
    *,
    total_steps: int,
    num_evals: int = 20,
    eval_episodes: int = 10,
    swept: bool = False,
    on_evaluation: Callable[[Array], None] | None = None,
) -> Callable[[Array, Mapping[str, Array]], TrainResult]:
    """The jitted program of :func:`train_many`: ``f(keys (S,), values {name: (H,)})``.

    Args:
      agent, total_steps, num_evals, eval_episodes, on_evaluation: as for :func:`make_train`.
      swept: whether ``values`` hold hyperparameters to vmap over (outer axis ``H``).

    Returns:
      A jitted function (``.lower(...).compile()`` separates compilation from the run).
    """
    train = make_train(
        agent, total_steps=total_steps, num_evals=num_evals, eval_episodes=eval_episodes, on_evaluation=on_evaluation
    )
    over_seeds = jax.vmap(train, in_axes=(0, None))
    return jax.jit(jax.vmap(over_seeds, in_axes=(None, 0)) if swept else over_seeds)


def train_many(
    agent: Agent,
    seeds: ArrayLike,
    hyperparams: Mapping[str, ArrayLike] | None = None,
    *,
    total_steps: int,
    num_evals: int = 20,
    eval_episodes: int = 10,
) -> TrainResult:
    """Trains one agent per (hyperparameter setting, seed) in one jitted, vmapped program.

    Args:
      agent: the :class:`Agent`.
      seeds: int seeds ``(S,)``; seed ``s`` uses ``jax.random.key(s)``.
      hyperparams: optimizer hyperparameters to sweep, each an array ``(H,)`` (the
        same ``H`` for all), set in the optimizer state with ``set_hyperparams``;
        ``None`` or ``{}`` trains the configured values.
      total_steps: environment steps per agent.
      num_evals: evaluations per agent.
      eval_episodes: episodes per evaluation.

    Returns:
      A :class:`TrainResult` whose leaves have leading axes ``(H, S)`` (``(S,)``
      without hyperparameters).
    """
    values = check_hyperparams(hyperparams)
    program = make_train_many(
        agent, total_steps=total_steps, num_evals=num_evals, eval_episodes=eval_episodes, swept=bool(values)
    )
    return program(seed_keys(seeds), values)
