"""Compares the notes' regularisers on MNIST-1D; see config.py.

    python -m experiments.compare_regularizers.main --workdir=runs/compare_regularizers
    python -m experiments.compare_regularizers.main --workdir=runs/cr --methods=none,dropout --seeds=0,1
"""

import pathlib

from absl import flags

from experiments import _common as common
from experiments.compare_regularizers import experiment

_CONFIG = common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for every output (created).")
_METHODS = flags.DEFINE_string("methods", None, "Comma-separated methods (default: all).")
_SEEDS = flags.DEFINE_string("seeds", None, "Comma-separated seeds.")
_NUM_EPOCHS = flags.DEFINE_integer("num_epochs", None, "Passes over the training split.")


def main(argv):
    del argv
    config = _CONFIG.value
    for name, value in (("methods", _METHODS.value), ("seeds", _SEEDS.value), ("num_epochs", _NUM_EPOCHS.value)):
        if value is not None:
            config[name] = value
    experiment.validate(config)
    workdir = common.check_workdir(_WORKDIR.value)
    print(experiment.run(config, workdir))
    print(f"outputs in {workdir}")


if __name__ == "__main__":
    common.run(main)
