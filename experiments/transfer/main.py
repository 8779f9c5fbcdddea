"""Transfer learning: pretrain on A, freeze all but the last layer, fine-tune on B; see config.py."""

from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags

from experiments import _common
from experiments.transfer import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).with_name("config.py")), "Transfer configuration.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for summary.md/.csv, curves.png and results.json.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    _common.dataset_registry(flag="config.dataset_a", extra=experiment.train_lib.TFDS_DATASETS).check(config.dataset_a)
    _common.dataset_registry(flag="config.dataset_b", extra=experiment.train_lib.TFDS_DATASETS).check(config.dataset_b)
    _common.model_registry(flag="config.model").check(config.model)
    workdir = _common.check_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(f"pretrain val_accuracy={result['pretrain_val_accuracy']:.4f}")
    for name, arm in result["arms"].items():
        print(f"{name}: val_accuracy={arm.val_accuracy:.4f} test_accuracy={arm.test_accuracy:.4f}")
    print(f"workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
