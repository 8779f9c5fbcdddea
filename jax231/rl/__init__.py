"""Reinforcement learning in pure JAX: exact MDP solutions, tabular Q-learning, deep RL on gymnax.

Tabular (lecture 14's MDPs): :func:`grid_world` builds an :class:`MDP` as arrays
(``P[s, a, s']``, ``r[s, a, s']``); :func:`policy_evaluation` solves the Bellman
expectation equation as a linear system; :func:`value_iteration`,
:func:`q_iteration` and :func:`policy_iteration` solve the optimality equation;
:func:`tabular_q_learning` learns ``Q*`` from samples with epsilon-greedy exploration.

Deep RL on gymnax (:func:`make_env`, names in :data:`ENV_NAMES`): :func:`dqn`
(replay buffer as arrays, target network, epsilon schedule, Huber loss),
:func:`reinforce` (with a learned baseline), :func:`a2c` and :func:`ppo`
(:func:`actor_critic`). Each is an :class:`Agent` of pure functions trained with
any jax231 optimizer; :func:`make_train` makes the whole run (environment steps,
buffer, updates, evaluations) one jittable function and :func:`train_many` runs
many seeds and optimizer hyperparameters (``set_hyperparams``) in one program.

Examples:
  >>> env = rl.make_env("CartPole-v1")
  >>> agent = rl.dqn(env, optimizers.adam(1e-3))
  >>> result = rl.train_many(agent, seeds=range(16), hyperparams={"learning_rate": [3e-4, 1e-3]},
  ...                        total_steps=200_000)
  >>> result.eval_return.shape  # (learning rates, seeds, evaluations)
  (2, 16, 20)
"""

from jax231.rl._actor_critic import (
    PPO_CONFIG,
    ActorCriticCarry,
    ActorCriticConfig,
    Rollout,
    a2c,
    actor_critic,
    ppo,
)
from jax231.rl._dqn import DqnCarry, DqnConfig, Transition, dqn
from jax231.rl._dynamic_programming import (
    ValueIterationResult,
    policy_evaluation,
    policy_iteration,
    q_from_values,
    q_iteration,
    value_iteration,
)
from jax231.rl._envs import (
    ENV_NAMES,
    SOLVED_RETURNS,
    Env,
    EnvStep,
    EpisodeStats,
    evaluate,
    make_env,
)
from jax231.rl._exploration import epsilon_greedy, linear_epsilon
from jax231.rl._losses import (
    categorical_entropy,
    huber_loss,
    log_prob,
    policy_gradient_loss,
)
from jax231.rl._mdp import ACTIONS, CLASSIC_LAYOUT, MDP, expected_rewards, grid_world
from jax231.rl._q_learning import TabularQState, tabular_q_learning
from jax231.rl._reinforce import (
    ReinforceCarry,
    ReinforceConfig,
    complete_episode_mask,
    reinforce,
)
from jax231.rl._replay import (
    ReplayBuffer,
    replay_add,
    replay_capacity,
    replay_init,
    replay_sample,
)
from jax231.rl._returns import discounted_returns, gae_advantages
from jax231.rl._train import (
    Agent,
    TrainResult,
    check_hyperparams,
    make_train,
    make_train_many,
    schedule_lengths,
    seed_keys,
    train_many,
)

__all__ = [
    "ACTIONS",
    "CLASSIC_LAYOUT",
    "ENV_NAMES",
    "MDP",
    "PPO_CONFIG",
    "SOLVED_RETURNS",
    "ActorCriticCarry",
    "ActorCriticConfig",
    "Agent",
    "DqnCarry",
    "DqnConfig",
    "Env",
    "EnvStep",
    "EpisodeStats",
    "ReinforceCarry",
    "ReinforceConfig",
    "ReplayBuffer",
    "Rollout",
    "TabularQState",
    "TrainResult",
    "Transition",
    "ValueIterationResult",
    "a2c",
    "actor_critic",
    "categorical_entropy",
    "check_hyperparams",
    "complete_episode_mask",
    "discounted_returns",
    "dqn",
    "epsilon_greedy",
    "evaluate",
    "expected_rewards",
    "gae_advantages",
    "grid_world",
    "huber_loss",
    "linear_epsilon",
    "log_prob",
    "make_env",
    "make_train",
    "make_train_many",
    "policy_evaluation",
    "policy_gradient_loss",
    "policy_iteration",
    "ppo",
    "q_from_values",
    "q_iteration",
    "reinforce",
    "replay_add",
    "replay_capacity",
    "replay_init",
    "replay_sample",
    "schedule_lengths",
    "seed_keys",
    "tabular_q_learning",
    "train_many",
    "value_iteration",
]
