"""Coarse-to-fine random search over learning rate and L2 strength (log space) on MNIST-1D.

Ten short coarse trials (300 SGD-momentum steps) over four decades of learning rate
and five of L2 strength, then six longer fine trials (1,500 steps) inside the span of
the three best coarse trials. Trials whose loss explodes (3x the initial loss) are
aborted by ``fit``'s guard after a few steps and listed as ``diverged``. The table
``trials.md`` is sorted by validation accuracy.

Command (from the repository root)::

    python -m experiments.hparam_search.main --workdir=/tmp/hparam_search

``--sweep`` runs each stage as one vmapped ``jax231.parallel.run_sweep`` over its points
(learning rate and L2 strength only, constant schedule; one compilation per stage instead
of one per trial); the explosion guard then acts per evaluation interval (see
``experiment.sweep_objective``). On a tiny config its trials equal the loop's (tests).

Any field of the train config can be searched (``--config.ranges``) and any model,
optimizer or dataset used (``--config.model=cnn1d --config.model_kwargs={}``).

Runtime: 13 min 36 s on the reference 2-core CPU (shared with other jobs; each trial
compiles its own training loop). Result: learning rates above about 1 diverge and are
aborted before their first evaluation; best validation accuracy 62.5% (lr 0.025, L2 0.0012),
from the fine stage. Details: experiments/RESULTS.md.

Grid search, rounds and categorical choices (measured on the shared, loaded machine, 37.3 s)::

    python -m experiments.hparam_search.main --workdir=/tmp/hparam_grid --config.strategy=grid \
        --config.grid_size=3 --config.rounds=2 --config.coarse_steps=300 --config.fine_steps=300 \
        "--config.choices={'optimizer': ('momentum', 'adam')}" --config.ranges.learning_rate="(1e-4, 1.0)"

runs 3 x 3 x 2 = 18 coarse points, 18 in round 1 and 9 in round 2 (only Adam survives the
top 3), 45 trials, 3 diverged (lr 1); each (stage, optimizer) compiles once (0.1-0.2 s per
trial after that). Best: Adam, lr 0.0158, L2 5.6e-4, 62.3% validation; the learning-rate
range shrinks from 4 decades to [0.0095, 0.0158].
"""

from __future__ import annotations

import ml_collections

from experiments.train import config as train_config


def get_config() -> ml_collections.ConfigDict:
    """The MNIST-1D MLP train config plus the search fields."""
    config = train_config.get_config("mnist1d_mlp")
    config.progress = False
    # Optimizer of every trial (its learning rate is searched).
    config.optimizer = "momentum"
    # Coarse log-space ranges (low, high) of numeric train-config fields.
    config.ranges = ml_collections.ConfigDict({"learning_rate": (1e-3, 10.0), "l2": (1e-6, 1e-1)})
    # Number of coarse and fine trials.
    config.num_coarse = 10
    config.num_fine = 6
    # Updates per coarse trial (short, to locate the region) and per fine trial.
    config.coarse_steps = 300
    config.fine_steps = 1500
    # The fine ranges span the top_k coarse trials, padded by `shrink` x the coarse width (in decades).
    config.top_k = 3
    config.shrink = 0.1
    # A trial whose loss passes explosion_factor x its initial loss is aborted as diverged.
    config.explosion_factor = 3.0
    # Validation accuracy is measured every eval_every steps.
    config.eval_every = 100
    # True (--sweep): each stage is one vmapped jax231.parallel.run_sweep over its points (learning
    # rate and l2 only, constant schedule); the explosion guard is then applied per evaluation interval.
    config.sweep = False
    # 'random' (the notes' choice) or 'grid': the Cartesian product of grid_size log-spaced values
    # per range and every categorical choice, in every round (num_coarse/num_fine then unused).
    config.strategy = "random"
    config.grid_size = 3
    # Fine rounds, each shrinking the ranges (and the choices) around the top_k best trials so far.
    config.rounds = 1
    # Categorical hyperparameters: field -> choices, drawn uniformly (optimizer, schedule, model,
    # or a nested architecture field joined by '__' such as 'model_kwargs__hidden_sizes'); empty: none.
    config.choices = ml_collections.ConfigDict({})
    return config
