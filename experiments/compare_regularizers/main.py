"""Compares the notes' regularisers on MNIST-1D; see config.py.

python -m experiments.compare_regularizers.main --workdir=runs/compare_regularizers
python -m experiments.compare_regularizers.main --workdir=runs/cr --methods=none,dropout --seeds=0,1
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.compare_regularizers import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for every output (created).")
_SHORTCUTS = _common.Shortcuts(
    {
        "methods": ("methods", "string", "Comma-separated methods (default: all)"),
        "seeds": ("seeds", "string", "Comma-separated seeds"),
        "num_epochs": ("num_epochs", "integer", "Passes over the training split"),
    }
)


def main(argv) -> None:
    del argv
    config = _SHORTCUTS.apply(_CONFIG.value)
    experiment.validate(config)  # a one-line UsageError naming the field
    workdir = _common.lock_workdir(_WORKDIR.value)
    print(experiment.run(config, workdir))
    print(f"outputs in {workdir}")


if __name__ == "__main__":
    _common.run(main)
