"""Transfer learning: pretrain on A, freeze all but the last layer, fine-tune on B; see config.py."""

from __future__ import annotations

import pathlib

import ml_collections

from experiments import _common
from experiments.transfer import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Transfer configuration."
)
_WORKDIR = _common.define_workdir("Directory for summary.md/.csv, curves.png and results.json.")


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` if it can run; a one-line :class:`~experiments._common.UsageError` naming the field otherwise."""
    tfds_names = experiment.train_lib.TFDS_DATASETS
    _common.dataset_registry(flag="config.dataset_a", extra=tfds_names).check(config.dataset_a)
    _common.dataset_registry(flag="config.dataset_b", extra=tfds_names).check(config.dataset_b)
    _common.model_registry(flag="config.model").check(config.model)
    return config


def main(argv) -> None:
    del argv
    config = validate(_CONFIG.value)
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(f"pretrain val_accuracy={result['pretrain_val_accuracy']:.4f}")
    for name, arm in result["arms"].items():
        print(f"{name}: val_accuracy={arm.val_accuracy:.4f} test_accuracy={arm.test_accuracy:.4f}")
    print(f"workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
