"""``algoperf_mini``: AlgoPerf's rules on seven small workloads (``config.py:algoperf_mini``).

Command (from the repository root; no download)::

    python -m experiments.compare_optimizers.main \\
        --config=experiments/compare_optimizers/config.py:algoperf_mini --workdir=runs/algoperf_mini

Measured runtime on the reference machine (2-core CPU, fourth session, 2026-12-01): the full
default run (6 optimizers x 7 workloads x (5 trials x 2 studies + 2 self-tuning runs)) took
1 h 0 min 36 s wall and 34.8 min CPU (1,790 s user + 296 s sys) at normal priority while other
jobs kept the load average at 4-14 (the run got 0.57 cores on average); on an idle machine the
CPU time suggests about 35 min or less (not measured). That run predates ``import jax231``'s
Eigen convolutions, so its CNN workloads used the slower YNNPACK kernels. Shampoo's exact
``eigh`` costs depend on ``jax231/_lapack_threads.py`` (jaxlib's LAPACK on one OpenBLAS thread):
without it Shampoo alone took 978 s on mnist1d_cnn.

Result (``experiments/RESULTS.md`` has every table): external-tuning score in steps
Shampoo 0.798 (6/7 targets), NAdamW 0.359, AdamW 0.348, momentum 0.283, schedule-free AdamW
0.222, Lion 0.119; self-tuning: momentum 0.222 first. ``report.md`` holds one results table
per workload, the ranking table (AlgoPerf benchmark score, external tuning and self-tuning,
in steps and in seconds), a generated reading, four performance-profile PNGs and the curves.

Rules (see ``scoring.py``): every optimizer of ``optimizers`` gets ``num_trials`` trials
from its ``search_spaces`` entry in each of ``num_studies`` studies (quasirandom Halton
draws, AlgoPerf's choice, shuffled into studies); its time on a workload is the median
over studies of the fastest trial reaching the target. Self-tuning runs the optimizer's
library defaults (no search) ``num_studies`` times for ``self_tuning_factor`` (1.5) x
the budget. All trials of one optimizer on one workload (every study, and the
self-tuning runs) train together in one ``jax231.parallel.run_sweep`` program: one
compilation per optimizer per workload, the hyperparameters written into each member's
state as data; every member trains for the longest budget (1.5x) and is scored on the
evaluations within its own. ``sweep=False`` trains them one by one with ``fit`` instead.
Learning rates are constant (a schedule cannot be swept as data, and no rule here then
depends on the run length, so training past a budget changes nothing before it).

Optimizers: heavy-ball momentum, AdamW, NAdamW (AlgoPerf's baseline), Lion,
schedule-free AdamW and Shampoo (AlgoPerf's external-tuning winner, block-diagonal
here: ``jax231/optimizers/_shampoo.py``). Shampoo once deadlocked in ``run_sweep`` on
this 2-core machine (MNIST-1D MLP, 3 members, 5 steps: CPU time flat after 11 s): under
``vmap`` each of its per-factor ``eigh`` calls was a batched LAPACK call
(``lapack_ssyevd_ffi -> jax::ParallelBatchMap -> BlockingCounter::Wait``) and two ran at
once, one on each of the intra-op pool's two threads, each waiting for work queued behind
the other (jaxlib 0.10.2; jax-ml/jax#39292 is related). Under ``vmap`` its ``eigh`` now runs
as a loop of unbatched calls (``jax231.optimizers.sequential_eigh``; issue 11, regression
test ``tests/optimizers/test_shampoo_sweep.py``).

Targets (``workload_configs.<name>.target``), set as AlgoPerf sets them, scaled down:
the target-setting algorithms (``target_setting_optimizers``: heavy-ball momentum and
NAdamW, two of AlgoPerf's four, as AlgoPerf uses two for its randomized workloads) are
tuned with ``target_setting_trials`` trials each for 3/4 of the workload's budget
(AlgoPerf gives submissions 4/3 of the target-setting runtime); the best trial's
hyperparameters are rerun with ``target_setting_seeds`` seeds and the target is the
median over those seeds of the best validation metric. The run that set the targets
below::

    python -m experiments.compare_optimizers.main \\
        --config=experiments/compare_optimizers/config.py:algoperf_mini \\
        --config.algoperf_mode=set_targets --workdir=runs/algoperf_targets

(its ``targets.md`` lists each target, the algorithm and hyperparameters that set it;
``experiments/RESULTS.md`` has the figures).
"""

from __future__ import annotations

import ml_collections

MODE = "algoperf"
"""``config.mode`` of this config (``main.py`` dispatches on it)."""


def _workload(**fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(fields)


def get_algoperf_mini_config() -> ml_collections.ConfigDict:
    """The ``algoperf_mini`` configuration (see the module docstring)."""
    c = ml_collections.ConfigDict()
    c.mode = MODE
    c.algoperf_mode = "benchmark"  # 'benchmark' (score the optimizers) or 'set_targets' (the target run).
    c.workloads = "mnist1d_mlp,mnist1d_cnn,mnist1d_gru,digits_mlp,cifar10_cnn,char_lstm,quadratic_deep"
    c.optimizers = "momentum,adamw,nadamw,lion,schedule_free_adamw,shampoo"  # jax231.optimizers names.

    # --- external tuning: num_trials x num_studies draws per (optimizer, workload).
    c.num_trials = 5  # trials per study (AlgoPerf: 5).
    c.num_studies = 2  # studies (AlgoPerf: 5); the time is the median over studies.
    c.search_seed = 0  # seed of the quasirandom draws and of their split into studies.
    c.search_spaces = ml_collections.ConfigDict(
        {  # optimizer -> hyperparameter -> (low, high, 'log'|'linear').
            "sgd": {"learning_rate": (1e-3, 1.0, "log")},
            "momentum": {"learning_rate": (1e-3, 0.3, "log")},
            "nesterov": {"learning_rate": (1e-3, 0.3, "log")},
            "adam": {"learning_rate": (1e-4, 3e-2, "log")},
            "adamw": {"learning_rate": (1e-4, 3e-2, "log"), "weight_decay": (1e-5, 1e-1, "log")},
            "nadamw": {"learning_rate": (1e-4, 3e-2, "log"), "weight_decay": (1e-5, 1e-1, "log")},
            "lion": {"learning_rate": (1e-5, 3e-3, "log"), "weight_decay": (1e-4, 1.0, "log")},
            "schedule_free_adamw": {"learning_rate": (3e-4, 3e-2, "log")},
            "shampoo": {"learning_rate": (1e-3, 1.0, "log")},
            "muon": {"learning_rate": (1e-3, 0.3, "log")},
        }
    )

    # --- self-tuning: the library defaults, num_studies runs, a longer budget.
    c.self_tuning = True  # also score the self-tuning ruleset.
    c.self_tuning_factor = 1.5  # budget multiplier of self-tuning runs.

    # --- target setting (algoperf_mode='set_targets').
    c.target_setting_optimizers = "nadamw"  # AlgoPerf's baseline (AlgoPerf: 4 algorithms, 2 for variants).
    c.target_setting_trials = 8  # trials per target-setting algorithm (AlgoPerf: 200).
    c.target_setting_seeds = 3  # reruns of the best trial (AlgoPerf: 20); the target is their median.
    c.target_setting_fraction = 0.75  # target runs last this fraction of the budget (AlgoPerf: 3/4).

    # --- training (per workload below), scoring, output.
    c.sweep = True  # True: one run_sweep per (workload, optimizer, ruleset); False: one fit per trial.
    c.tau_max = 4.0  # r_max of the profile and the score (AlgoPerf: 4).
    c.seed = 0  # base seed of the trials' initialisation and data order (trial k: seed + k).
    c.data_dir = ""  # data folder for the CIFAR-10 copy's cache ('' = the default).
    c.workload_configs = ml_collections.ConfigDict(
        {
            # metric: 'val_accuracy' (target in (0, 1], higher is better) or 'val_loss' (lower is better).
            # target: set by the target-setting run (module docstring; figures in experiments/RESULTS.md),
            # cifar10_cnn's came from its own target-setting run in the third session (same protocol).
            "mnist1d_mlp": _workload(
                metric="val_accuracy",
                target=0.616,
                num_steps=600,
                batch_size=128,
                eval_every=50,
                val_size=500,
                train_size=0,
                model={"hidden_sizes": (100, 100), "activation": "relu"},
            ),
            "mnist1d_cnn": _workload(
                metric="val_accuracy",
                target=0.886,
                num_steps=600,
                batch_size=128,
                eval_every=50,
                val_size=500,
                train_size=0,
                model={},
            ),
            "mnist1d_gru": _workload(
                metric="val_accuracy",
                target=0.826,
                num_steps=400,
                batch_size=64,
                eval_every=50,
                val_size=500,
                train_size=0,
                model={"hidden_dim": 32},
            ),
            "digits_mlp": _workload(
                metric="val_accuracy",
                target=0.9233,
                num_steps=300,
                batch_size=64,
                eval_every=25,
                val_size=300,
                train_size=0,
                model={"hidden_sizes": (64,)},
            ),
            "cifar10_cnn": _workload(
                metric="val_accuracy",
                target=0.362,
                num_steps=300,
                batch_size=32,
                eval_every=50,
                val_size=500,
                train_size=3000,
                test_size=500,
                model={"num_filters": 8, "filter_size": 5, "hidden_dim": 32},
            ),
            "char_lstm": _workload(
                metric="val_accuracy",
                target=0.446,
                num_steps=400,
                batch_size=32,
                eval_every=50,
                val_size=500,
                train_size=10000,
                context=16,
                stride=7,
                model={"hidden_dim": 64, "embed_dim": 16},
            ),
            "quadratic_deep": _workload(
                metric="val_loss",
                target=91.62,
                num_steps=300,
                batch_size=128,
                eval_every=20,
                val_size=1000,
                train_size=1000,
                noise_level=0.6,
            ),
        }
    )
    return c


__all__ = ["MODE", "get_algoperf_mini_config"]
