"""Default config of compare_optimizers: every optimizer TUNED, then compared, on MNIST-1D.

Command (from the repository root; no download, MNIST-1D is generated locally)::

    python -m experiments.compare_optimizers.main --workdir=runs/compare_optimizers

What it does (DeepOBS's protocol, small): for softmax regression and the 100-100 MLP,
each minibatch optimizer (the notes' SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam
and AlgoPerf's baselines NAdamW, Lion, schedule-free AdamW) trains 5 learning rates
log-spaced over ``tuning.lr_ranges`` x 3 seeds = 15 runs as the members of ONE
``jax231.parallel.run_sweep`` (one compilation per model x optimizer); the grid point
with the highest mean final validation accuracy is chosen (``tuning.select``; the test
split is never looked at) and its 3 seeds are reported. L-BFGS (full batch, its line
search sets the step) has no learning rate to tune and keeps ``fit``'s loop at 1.0.
The budget (grid, ranges, seeds, steps) is printed with the result and heads the
summary table. Outputs: ``report.md`` (every table and figure, the command, budget,
machine and a reading generated from the numbers), the sensitivity figure, curves,
performance profiles in steps (minibatch rules) and seconds, ``results.json`` (all 276
runs). See ``tune.py``.

Runtime, measured on the reference machine (2-core CPU, quiet, 2026-12-01, third session): 1 min
24 s wall, 112 s of CPU time (user + sys; 1 min 40 s and 139 s before run_sweep shared the model's
init program), compilation (18 sweeps), TensorBoard and plots
included. 600 steps per run so that the 270 tuning runs fit the 3-minute budget.

Expected result (3 seeds at the chosen rate; val = last 500 training examples, test =
the MNIST-1D test split): softmax regression, every optimizer 0.304-0.320 test accuracy
(L-BFGS reaches the convex optimum, train loss 1.585); MLP, SGD 0.644, momentum 0.634,
Nesterov 0.625, schedule-free AdamW 0.619, NAdamW / AdaGrad / RMSProp / Lion 0.61, L-BFGS
0.592, Adam 0.591; every optimizer reaches both val targets on every seed. Steps profile:
schedule-free AdamW 1.0, momentum and NAdamW 0.72, SGD 0.42 lowest.
``--config.tuning.select=val_loss`` chooses by the lowest mean final val loss instead,
which on the MLP picks small, under-trained rates for the adaptive rules (Adam 9.5e-4:
0.52 test accuracy).

``--notune`` trains each optimizer at ``learning_rates`` instead (the old behaviour;
``--sweep`` then runs its seeds as one run_sweep). The 2-D mode (``--mode=2d``) draws
every path on an ill-conditioned quadratic, Rosenbrock and a saddle point, as a PNG and
an animated GIF (matplotlib's Pillow writer).

Override any field with ``--config.<field>=value`` (e.g. ``--config.tuning.grid_size=7``,
``--config.tuning.lr_ranges.adam="(1e-4,1e-2)"``), or the shortcut flags of ``main.py``.
"""

from __future__ import annotations

import ml_collections

from jax231 import training

from experiments.compare_optimizers.algoperf_config import get_algoperf_mini_config


def get_config(name: str = "") -> ml_collections.ConfigDict:
    """The default configuration (see the module docstring); ``config.py:<name>`` picks a named one."""
    if name:
        return named_config(name)
    c = ml_collections.ConfigDict()
    c.mode = "train"  # 'train': optimizers on a dataset; '2d': trajectories on 2-D surfaces.

    # --- data
    c.dataset = "mnist1d"  # name for jax231.pipelines.load_arrays; mnist1d needs no download.
    c.data_dir = ""  # data folder passed to the loader ('' = its default).
    c.val_size = 500  # val = the last val_size examples of the train split.
    c.train_size = 0  # keep only the first train_size training examples (0 = all).
    c.test_size = 0  # keep only the first test_size test examples (0 = all).

    # --- models (one panel per model in the curves)
    c.models = "linear,mlp"  # comma-separated names of jax231.models.get.
    c.model_configs = ml_collections.ConfigDict(
        {
            "linear": {},  # softmax regression: a linear layer, 'small' init as in the course.
            "mlp": {"hidden_sizes": (100, 100), "activation": "relu"},  # two ReLU hidden layers.
        }
    )  # extra keyword arguments per model name (num_classes is added).

    # --- optimizers
    c.optimizers = (
        "sgd,momentum,nesterov,adagrad,rmsprop,adam,nadamw,lion,schedule_free_adamw,"
        "lbfgs"
    )  # names of jax231.optimizers: the notes' seven + AlgoPerf's baselines.
    c.tune = True  # tune each minibatch optimizer's learning rate (one run_sweep per model x optimizer).
    c.tuning = ml_collections.ConfigDict(
        {  # the tuning budget (printed with the result).
            "grid_size": 5,  # learning rates per optimizer, log-spaced over lr_ranges[optimizer].
            "select": "val_accuracy",  # choose by the highest mean final val accuracy, the metric the
            #     benchmark compares ('val_loss': the lowest mean final val loss, which on the MLP picks small,
            #     under-trained rates: the least over-confident, not the most accurate); test is never looked at.
            "lr_ranges": {  # (low, high) per optimizer: about a decade either side of its usual rate.
                "sgd": (0.03, 3.0),
                "momentum": (3e-3, 0.3),  # v <- 0.9 v + g: the rate is ~ SGD's x (1 - 0.9).
                "nesterov": (3e-3, 0.3),
                "adagrad": (5e-3, 0.5),
                "rmsprop": (3e-4, 3e-2),
                "adam": (3e-4, 3e-2),
                "adamw": (3e-4, 3e-2),
                "nadam": (3e-4, 3e-2),
                "nadamw": (3e-4, 3e-2),
                "lion": (1e-4, 1e-2),  # sign updates: ~3-10x below Adam's rate (Chen et al. 2023).
                "schedule_free_sgd": (0.03, 3.0),
                "schedule_free_adamw": (1e-3, 0.1),  # evaluated at its averaged point x (eval_params).
                "muon": (2e-3, 0.2),
                "shampoo": (0.01, 1.0),
            },
        }
    )  # seeds: c.seeds below; every seed runs at every grid point (members of the same sweep).
    c.learning_rates = ml_collections.ConfigDict(
        {  # used by --notune, and by the untuned full-batch rules.
            "sgd": 0.3,
            "momentum": 0.03,
            "nesterov": 0.03,
            "adagrad": 0.05,
            "rmsprop": 3e-3,
            "adam": 3e-3,
            "adamw": 3e-3,
            "nadamw": 3e-3,  # nadamw, lion, schedule_free_adamw: the midpoints of their tuning ranges.
            "lion": 1e-3,
            "schedule_free_adamw": 0.01,
            "lbfgs": 1.0,  # scale of L-BFGS's first line-search trial step (untuned: textbook 1.0).
        }
    )
    c.schedule = "constant"  # 'constant', 'cosine', 'step' or 'warmup_cosine' (needs --notune).
    c.warmup_steps = 50  # warm-up length of 'warmup_cosine'.
    c.lbfgs_history = 10  # curvature pairs kept by L-BFGS.

    # --- training
    c.batch_size = 128  # minibatch size of the first-order methods (L-BFGS is full batch).
    c.num_steps = 600  # updates of the first-order methods (~22 epochs of 3500 examples; cut from 1000
    #                    so that tuning, 5 x more runs, fits the 3-minute budget).
    c.eval_every = 50  # steps between evaluations on val (rows of the curves).
    c.lbfgs_steps = 100  # L-BFGS iterations (each one full-batch pass plus its line search).
    c.lbfgs_eval_every = 5  # L-BFGS iterations between evaluations.
    c.seeds = "0,1,2"  # seeds (initialisation, data order); mean ± std over them.
    c.sweep = False  # with --notune: True trains all seeds of a minibatch optimizer in one vmapped
    #                  jax231.parallel.run_sweep program (L-BFGS keeps the loop); see sweep.py.
    #                  Tuning always sweeps.

    # --- report
    c.target_accuracy = ml_collections.ConfigDict(
        {  # per model: the val accuracy whose first
            "linear": 0.30,  # crossing gives 'steps / seconds to target' and the performance profile;
            "mlp": 0.55,  # reached by every optimizer with the default rates; in (0, 1].
        }
    )
    c.default_target_accuracy = 0.5  # for models not listed in target_accuracy.
    c.tau_max = 4.0  # right end of the performance profile (AlgoPerf uses 4).
    c.tensorboard = training.tensorboard_available()  # every run's curves and an HParams table under
    #                                                 workdir/tensorboard (on when TensorFlow imports).
    c.profile_cost = "steps"  # the headline profile: 'steps' to target (stable), 'seconds' (compilation
    #                           excluded; AlgoPerf's choice, noisy on a shared machine) or 'epochs'.
    #                           The steps and seconds profiles are both always written.

    # --- 2-D mode
    c.surfaces = "quadratic,rosenbrock,saddle"  # surfaces drawn by --mode=2d.
    c.trajectory_steps = ml_collections.ConfigDict({"quadratic": 60, "rosenbrock": 1000, "saddle": 100})
    c.trajectory_lrs = ml_collections.ConfigDict(
        {  # surface -> optimizer -> learning rate (picked by
            #                                              eye from a few values: a path that reaches the minimum).
            "quadratic": {
                "sgd": 0.09,
                "momentum": 0.02,
                "nesterov": 0.02,
                "adagrad": 1.0,
                "rmsprop": 0.1,
                "adam": 0.3,
                "adamw": 0.3,
                "nadamw": 0.3,
                "lion": 0.15,
                "schedule_free_adamw": 1.0,
                "lbfgs": 1.0,
            },
            "rosenbrock": {
                "sgd": 1e-3,
                "momentum": 2e-4,
                "nesterov": 2e-4,
                "adagrad": 0.5,
                "rmsprop": 0.01,
                "adam": 0.05,
                "adamw": 0.05,
                "nadamw": 0.1,
                "lion": 0.003,
                "schedule_free_adamw": 0.3,
                "lbfgs": 1.0,
            },
            "saddle": {
                "sgd": 0.05,
                "momentum": 0.01,
                "nesterov": 0.01,
                "adagrad": 0.5,
                "rmsprop": 0.05,
                "adam": 0.1,
                "adamw": 0.1,
                "nadamw": 0.1,
                "lion": 0.1,
                "schedule_free_adamw": 0.3,
                "lbfgs": 1.0,
            },
        }
    )
    return c


NAMED_CONFIGS = {"algoperf_mini": get_algoperf_mini_config}
"""Configs selected by ``--config=experiments/compare_optimizers/config.py:<name>``."""


def named_config(name: str) -> ml_collections.ConfigDict:
    """The config called ``name`` (a key of :data:`NAMED_CONFIGS`).

    Raises:
      FileNotFoundError: ``--config: expected ...``, listing the valid names (ml_collections defers
        an OSError of a config file to its first use, where main.py reports it in one line, exit 2).
    """
    if name not in NAMED_CONFIGS:
        raise FileNotFoundError(
            f"--config: expected config.py or config.py:<name> with name one of "
            f"{', '.join(NAMED_CONFIGS)}, got {name!r}"
        )
    return NAMED_CONFIGS[name]()
