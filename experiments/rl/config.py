"""Default config of the rl experiment: deep RL on gymnax CartPole-v1, 16 seeds per program.

Command (from the repository root)::

    python -m experiments.rl.main --workdir=runs/rl

What it does: trains DQN, A2C, PPO and REINFORCE (with a learned baseline) for
``total_steps`` environment steps on each of ``num_seeds`` seeds, every
algorithm's seeds in one jitted program (``jax231.rl.train_many``: environment
steps, replay buffer, updates and evaluations inside one ``lax.scan``, vmapped
over seeds); then compares RMSProp, Adam and SGD+momentum on DQN, each
optimizer's learning rates vmapped inside one program (``set_hyperparams``).
Evaluation: the greedy policy's mean return over ``eval_episodes`` episodes, at
``num_evals`` evenly spaced points. A seed is "solved" at the first evaluation
whose mean return is >= ``solved_return`` (475, CartPole-v1's threshold).

Outputs in ``--workdir``: ``returns.md/.csv`` (per algorithm), ``throughput.md/.csv``
(env steps per second for 1 and ``num_seeds`` vmapped agents),
``dqn_optimizers.md/.csv`` and ``dqn_performance_profile.md/.csv/.png``,
``curves_eval_return.png``, ``curves_train_return.png``, ``dqn_optimizers.png``,
``results.json``; the run ends with one summary line per algorithm, e.g.
``dqn: solved 15/16 seeds (mean evaluation return >= 475) in 183,000 env steps``
(the steps by which that many seeds were solved).

Measured (2-core CPU shared with 7 other jobs, load average 20-33 on 2 cores:
every time below is inflated several times; CPU seconds are the steadier
figure). Each algorithm's 16 seeds were trained in one ``rl.train_many``
program with exactly these defaults (seeds 0-15, 20 evaluations of 10 greedy
episodes), the computation the experiment makes:

* DQN (Adam 1e-3, 64-64 ReLU Q-network, double DQN, 4 envs, 1 update per
  iteration, target copy every 250 iterations, epsilon 1 -> 0.05 over 20k
  steps): ``dqn: solved 14/16 seeds (mean evaluation return >= 475) in 200,000
  env steps`` (median 170,000); final evaluation 287.6 ± 180.1, best 478.0 on
  average: DQN's greedy policy oscillates. 368 s wall for the 16 seeds, under the
  issue's 10 minutes. Doubling the updates per iteration with a target copy every
  100 iterations did worse (13/16, 1,109 s).
* A2C (Adam 7e-4, 16 envs x 16 steps, GAE 0.95, entropy 0.01):
  ``a2c: solved 15/16 seeds (...) in 140,000 env steps`` (median 65,000);
  final 385.6 ± 133.4; 166 s wall.
* PPO (PureJaxRL's CartPole settings with 8 envs, Adam 2.5e-3):
  ``ppo: solved 16/16 seeds (...) in 50,000 env steps`` (median 30,000); every
  seed at 500 from 100k steps on; 665 s wall (heaviest load).
* REINFORCE with a learned baseline and the DQN optimizer comparison: see the
  coordinator's report / RESULTS (the full default run did not finish on the
  shared machine before the deadline).

Compilation of one training program takes about 5 CPU seconds (40-60 s wall on
the loaded machine).

``--config=experiments/rl/config.py:tiny`` is a seconds-long smoke configuration
used by the tests. Override any field with ``--config.<field>=value`` or the
short flags of ``main.py`` (``--algorithms``, ``--seeds``, ``--total_steps``,
``--env``).
"""

from __future__ import annotations

import ml_collections

PRESETS = ("default", "tiny")


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    """The default configuration, or the ``tiny`` smoke preset (see the module docstring)."""
    if preset not in PRESETS:
        raise ValueError(f"config preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    c = ml_collections.ConfigDict()
    c.env_name = "CartPole-v1"  # a name of jax231.rl.ENV_NAMES (gymnax).
    c.num_seeds = 16  # agents per program: seeds 0 .. num_seeds - 1.
    c.total_steps = 200_000  # environment steps per agent (the budget).
    c.num_evals = 20  # evaluations per agent, evenly spaced (every 10,000 steps).
    c.eval_episodes = 10  # greedy episodes per evaluation.
    c.solved_return = 475.0  # a seed is solved once an evaluation's mean return reaches this.
    c.algorithms = "dqn,a2c,ppo,reinforce"  # comma-separated, of dqn, a2c, ppo, reinforce ('' = comparison only).
    c.optimizer = "adam"  # optimizer of every algorithm's main run (a jax231.optimizers name).
    c.learning_rates = ml_collections.ConfigDict({  # main-run learning rate per algorithm.
        "dqn": 1e-3, "a2c": 7e-4, "ppo": 2.5e-3, "reinforce": 3e-3})
    # Options of each algorithm (fields of jax231.rl.DqnConfig / ActorCriticConfig / ReinforceConfig).
    c.dqn = ml_collections.ConfigDict({
        "hidden_sizes": (64, 64), "num_envs": 4, "buffer_size": 50_000, "batch_size": 64,
        "learning_starts": 1_000, "updates_per_iteration": 1, "target_update_every": 250, "discount": 0.99,
        "epsilon_start": 1.0, "epsilon_end": 0.05, "epsilon_steps": 20_000, "huber_delta": 1.0,
        "max_grad_norm": 10.0, "double": True})
    c.a2c = ml_collections.ConfigDict({
        "hidden_sizes": (64, 64), "num_envs": 16, "num_steps": 16, "discount": 0.99, "gae_lambda": 0.95,
        "value_coef": 0.5, "entropy_coef": 0.01, "max_grad_norm": 0.5})
    c.ppo = ml_collections.ConfigDict({
        "hidden_sizes": (64, 64), "num_envs": 8, "num_steps": 128, "num_epochs": 4, "num_minibatches": 4,
        "clip_eps": 0.2, "discount": 0.99, "gae_lambda": 0.95, "value_coef": 0.5, "entropy_coef": 0.01,
        "max_grad_norm": 0.5})
    c.reinforce = ml_collections.ConfigDict({
        "hidden_sizes": (64, 64), "num_envs": 4, "discount": 0.99, "value_coef": 0.5, "entropy_coef": 0.0})
    # DQN optimizer comparison: optimizer -> learning rates, vmapped as a hyperparameter in one program
    # per optimizer (rmsprop: the Nature DQN's choice; momentum: SGD with heavy-ball momentum 0.9).
    c.compare_optimizers = "rmsprop,adam,momentum"  # '' skips the comparison.
    c.compare_learning_rates = ml_collections.ConfigDict({
        "rmsprop": (3e-4, 1e-3), "adam": (3e-4, 1e-3), "momentum": (3e-3, 1e-2)})
    c.compare_seeds = 8  # seeds per (optimizer, learning rate): 2 x 8 = 16 agents per program.
    c.throughput_steps = 20_000  # env steps per agent of the 1- and num_seeds-agent programs timed for steps/s.
    c.throughput_rounds = 3  # alternating timed rounds of the two programs (medians).
    c.progress = True  # progress bar per training program.
    if preset == "tiny":
        c.num_seeds = 2
        c.total_steps = 2_048
        c.num_evals = 2
        c.eval_episodes = 2
        c.algorithms = "dqn"
        c.dqn.hidden_sizes = (16,)
        c.dqn.learning_starts = 64
        c.dqn.epsilon_steps = 500
        c.dqn.buffer_size = 1_000
        c.compare_optimizers = "rmsprop,adam"
        c.compare_learning_rates = ml_collections.ConfigDict({"rmsprop": (1e-3, 3e-3), "adam": (1e-3,)})
        c.compare_seeds = 2
        c.throughput_steps = 512
        c.throughput_rounds = 1
        c.progress = False
    return c
