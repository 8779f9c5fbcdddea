r"""Train any model x dataset x optimizer x schedule; see config.py for presets and results.

Example::

    python -m experiments.train.main --workdir=/tmp/train \
        --config=experiments/train/config.py:mnist1d_cnn --optimizer=momentum --lr=0.05 --schedule=cosine
"""

from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags

from experiments import _common
from experiments.train import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).with_name("config.py")), "Training configuration (config.py:<preset>).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results.json and plots.")
# Short overrides of config fields (None = keep the config's value).
_OVERRIDES = {
    "model": flags.DEFINE_string("model", None, "Model name (jax231.models.get)."),
    "dataset": flags.DEFINE_string("dataset", None, "Dataset name: mnist1d, digits, cifar10_shared or TFDS."),
    "optimizer": flags.DEFINE_string("optimizer", None, "Optimizer name (jax231.optimizers.get)."),
    "learning_rate": flags.DEFINE_float("lr", None, "Base learning rate."),
    "schedule": flags.DEFINE_string("schedule", None, "Learning-rate schedule: " + ", ".join(experiment.SCHEDULES)),
    "batch_size": flags.DEFINE_integer("batch_size", None, "Minibatch size (0 = full batch)."),
    "num_steps": flags.DEFINE_integer("num_steps", None, "Number of updates (when epochs is 0)."),
    "epochs": flags.DEFINE_integer("epochs", None, "Number of epochs (overrides num_steps when > 0)."),
    "augment": flags.DEFINE_boolean("augment", None, "Random crops and flips of training batches."),
    "norm": flags.DEFINE_string("norm", None, "Normalisation of models that take it: '', batch, layer."),
    "drop_rate": flags.DEFINE_float("drop_rate", None, "Dropout probability of models that take it."),
    "l2": flags.DEFINE_float("l2", None, "L2 penalty strength."),
    "seed": flags.DEFINE_integer("seed", None, "Random seed."),
}


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    for field, flag in _OVERRIDES.items():
        if flag.value is not None:
            config[field] = flag.value
    workdir = _common.check_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(f"status={result.fit.status} best_step={result.fit.best_step} "
          f"val_accuracy={result.val['accuracy']:.4f} test_accuracy={result.test['accuracy']:.4f} "
          f"seconds={result.seconds:.1f} workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
