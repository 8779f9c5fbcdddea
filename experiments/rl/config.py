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

Measured with these defaults (``python -m experiments.rl.main``, seeds 0-15, one
program of 16 agents per algorithm, DQN's optimizer aside; 2-core CPU shared with
7 other jobs at a load average of 20-37, so every wall time is inflated several
times):

* DQN with SGD + momentum 0.9, lr 1e-2 (the default, picked from the comparison
  below): ``dqn: solved 16/16 seeds (mean evaluation return >= 475) in 180,000 env
  steps`` (median 105,000; final evaluation 447.4 ± 106.8); 440 s for the 16 seeds
  compilation included (measured through ``rl.train_many`` with this exact config
  and seeds, after the full run below). With Adam 1e-3 (the full run's earlier
  default): ``dqn: solved 14/16 seeds (...) in 200,000 env steps`` (median 170,000;
  final 287.6 ± 180.2, best 478.0 ± 54.9: the greedy policy oscillates); 177.8 s
  (+225 s compilation). Doubling Adam's updates per iteration with a target copy
  every 100 iterations did worse (13/16).
* ``a2c: solved 15/16 seeds (...) in 139,776 env steps`` (median 64,896; final
  385.6 ± 133.4); 35.7 s (+88 s compilation).
* ``ppo: solved 16/16 seeds (...) in 46,080 env steps`` (median 27,648; every seed
  at 500 at the end); 86.5 s (+272 s compilation).
* ``reinforce: solved 16/16 seeds (...) in 150,000 env steps`` (median 60,000;
  final 477.8 ± 57.3); 58.0 s (+87 s compilation).
* DQN optimizer comparison (8 seeds x 2 learning rates vmapped in one program per
  optimizer; ``--algorithms=`` runs it alone: 29 min wall, 4 min 23 s CPU), seeds
  solved and final evaluation return: RMSProp 3e-4 0/8 (88 ± 24), 1e-3 4/8
  (281 ± 145); Adam 3e-4 2/8 (114 ± 86), 1e-3 7/8 (263 ± 147, median 155,000
  steps); SGD+momentum (0.9) 3e-3 7/8 (274 ± 155, median 115,000), 1e-2 8/8
  (421 ± 129, median 120,000). Performance-profile scores (steps to solve, tau <= 4):
  momentum 0.71 / 0.66, Adam 0.58 / 0.22, RMSProp 0.29 / 0. RMSProp, the Nature
  DQN's choice, needs a larger rate here (the Atari paper clips rewards and uses
  2.5e-4 with a different epsilon); this grid has only two points per optimizer.
* Env steps per second (``python -m benchmarks.bench_rl``, 20,000 steps per agent,
  medians of interleaved rounds): DQN 25,240 (1 agent) vs 24,373 (16 agents), 1.0x;
  A2C 83,378 vs 115,596, 1.4x. On 2 CPU cores the 16 agents' arithmetic is 16 times
  one agent's and only the per-operation overhead is shared; the large ratios of
  PureJaxRL are a GPU effect. The experiment's own one-shot throughput table of this
  run (0.4-4.9x) was taken while compilations of other jobs ran and is not reliable;
  the experiment now times the two programs in alternating rounds after a warm-up.

Compilation of one training program takes about 5 CPU seconds (90-270 s wall on
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
    c.optimizers = ml_collections.ConfigDict(
        {  # main-run optimizer per algorithm (jax231.optimizers names).
            "dqn": "momentum",
            "a2c": "adam",
            "ppo": "adam",
            "reinforce": "adam",
        }
    )  # DQN: SGD + momentum 0.9.
    c.learning_rates = ml_collections.ConfigDict(
        {  # main-run learning rate per algorithm.
            "dqn": 1e-2,
            "a2c": 7e-4,
            "ppo": 2.5e-3,
            "reinforce": 3e-3,
        }
    )
    # Options of each algorithm (fields of jax231.rl.DqnConfig / ActorCriticConfig / ReinforceConfig).
    c.dqn = ml_collections.ConfigDict(
        {
            "hidden_sizes": (64, 64),
            "num_envs": 4,
            "buffer_size": 50_000,
            "batch_size": 64,
            "learning_starts": 1_000,
            "updates_per_iteration": 1,
            "target_update_every": 250,
            "discount": 0.99,
            "epsilon_start": 1.0,
            "epsilon_end": 0.05,
            "epsilon_steps": 20_000,
            "huber_delta": 1.0,
            "max_grad_norm": 10.0,
            "double": True,
        }
    )
    c.a2c = ml_collections.ConfigDict(
        {
            "hidden_sizes": (64, 64),
            "num_envs": 16,
            "num_steps": 16,
            "discount": 0.99,
            "gae_lambda": 0.95,
            "value_coef": 0.5,
            "entropy_coef": 0.01,
            "max_grad_norm": 0.5,
        }
    )
    c.ppo = ml_collections.ConfigDict(
        {
            "hidden_sizes": (64, 64),
            "num_envs": 8,
            "num_steps": 128,
            "num_epochs": 4,
            "num_minibatches": 4,
            "clip_eps": 0.2,
            "discount": 0.99,
            "gae_lambda": 0.95,
            "value_coef": 0.5,
            "entropy_coef": 0.01,
            "max_grad_norm": 0.5,
        }
    )
    c.reinforce = ml_collections.ConfigDict(
        {"hidden_sizes": (64, 64), "num_envs": 4, "discount": 0.99, "value_coef": 0.5, "entropy_coef": 0.0}
    )
    # DQN optimizer comparison: optimizer -> learning rates, vmapped as a hyperparameter in one program
    # per optimizer (rmsprop: the Nature DQN's choice; momentum: SGD with heavy-ball momentum 0.9).
    c.compare_optimizers = "rmsprop,adam,momentum"  # '' skips the comparison.
    c.compare_learning_rates = ml_collections.ConfigDict(
        {"rmsprop": (3e-4, 1e-3), "adam": (3e-4, 1e-3), "momentum": (3e-3, 1e-2)}
    )
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
        c.optimizers.dqn = "adam"  # the comparison's adam 1e-3 then reuses the main run
        c.learning_rates.dqn = 1e-3
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
