"""Learning-rate range test (Smith 2017) on MNIST-1D with an MLP and SGD.

The learning rate grows exponentially from ``min_lr`` to ``max_lr`` over ``num_steps``
minibatch updates; the run stops when the smoothed loss passes ``stop_factor`` times
its minimum. The plot shows loss against learning rate on a log axis; the suggested
learning rate is a tenth of the one at the smoothed minimum (the steepest-descent
point is reported too).

Command (from the repository root)::

    python -m experiments.lr_find.main --workdir=/tmp/lr_find

Any model, optimizer or dataset of the train experiment works, e.g.
``--config.model=cnn1d --config.model_kwargs={} --config.optimizer=adam``.

Runtime: 55 s on the reference 2-core CPU (shared with other jobs).
Result: a flat loss up to about 1e-3, a minimum of the smoothed loss at lr 1.25, a blow-up
at lr 5.5 (step 287 of 300); suggested learning rate 0.125 (a tenth of the minimum's).
Details (the steepest-descent point): experiments/RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from experiments.train import config as train_config


def get_config() -> ml_collections.ConfigDict:
    """The train experiment's MNIST-1D MLP fields plus the range-test fields."""
    config = train_config.get_config("mnist1d_mlp")
    # Optimizer whose learning rate is ramped (its other options: optimizer_kwargs).
    config.optimizer = "sgd"
    # First and last learning rate of the exponential ramp.
    config.min_lr = 1e-5
    config.max_lr = 10.0
    # Number of minibatch updates from min_lr to max_lr (the run may stop earlier).
    config.num_steps = 300
    # Minibatch size.
    config.batch_size = 100
    # EMA coefficient of the smoothed loss (bias-corrected).
    config.smoothing = 0.9
    # Stop once the smoothed loss exceeds stop_factor x its minimum (or is not finite).
    config.stop_factor = 4.0
    return config
