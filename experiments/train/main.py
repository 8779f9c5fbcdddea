r"""Train any model x dataset x optimizer x schedule; see config.py for presets and results.

Example::

    python -m experiments.train.main --workdir=/tmp/train \
        --config=experiments/train/config.py:mnist1d_cnn --optimizer=momentum --lr=0.05 --schedule=cosine
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.train import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Training configuration (config.py:<preset>)."
)
_WORKDIR = _common.define_workdir("Directory for checkpoints, logs, results.json and plots.")
# Short flags for the fields changed most often; any field also takes --config.<field>=value.
_SHORTCUTS = _common.Shortcuts(
    {
        "model": ("model", "string", "Model name (jax231.models.get)"),
        "dataset": ("dataset", "string", "Dataset name: mnist1d, digits, cifar10_shared or TFDS"),
        "optimizer": ("optimizer", "string", "Optimizer name (jax231.optimizers.get)"),
        "lr": ("learning_rate", "float", "Base learning rate"),
        "schedule": ("schedule", "string", "Learning-rate schedule: " + ", ".join(experiment.SCHEDULES)),
        "batch_size": ("batch_size", "integer", "Minibatch size (0 = full batch)"),
        "num_steps": ("num_steps", "integer", "Number of updates (when epochs is 0)"),
        "epochs": ("epochs", "integer", "Number of epochs (overrides num_steps when > 0)"),
        "augment": ("augment", "bool", "Random crops and flips of training batches"),
        "norm": ("norm", "string", "Normalisation of models that take it: '', batch, layer"),
        "drop_rate": ("drop_rate", "float", "Dropout probability of models that take it"),
        "l2": ("l2", "float", "L2 penalty strength"),
        "seed": ("seed", "integer", "Random seed"),
    }
)


def main(argv) -> None:
    del argv
    config = experiment.validate(_SHORTCUTS.apply(_CONFIG.value))
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(
        f"status={result.fit.status} best_step={result.fit.best_step} "
        f"val_accuracy={result.val['accuracy']:.4f} test_accuracy={result.test['accuracy']:.4f} "
        f"seconds={result.seconds:.1f} workdir={workdir}"
    )


if __name__ == "__main__":
    _common.run(main)
