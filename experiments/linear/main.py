"""Linear SVM against softmax on CIFAR-10 with a coarse-to-fine random search; see config.py."""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.linear import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Linear-classifier configuration."
)
_WORKDIR = _common.define_workdir("Directory for tables, template images and results.json.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    experiment.validate_config(config)  # a one-line UsageError naming the field
    workdir = _common.lock_workdir(_WORKDIR.value)
    results = experiment.run(config, workdir)
    for loss, result in results.items():
        print(
            f"{loss}: learning_rate={result.best.hparams['learning_rate']:.3g} l2={result.best.hparams['l2']:.3g} "
            f"val_accuracy={result.val_accuracy:.4f} test_accuracy={result.test_accuracy:.4f}"
        )
    print(f"workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
