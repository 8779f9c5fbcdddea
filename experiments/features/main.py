"""A linear SVM and a two-layer net on HOG + HSV colour features; see config.py.

Example::

    python -m experiments.features.main --workdir=/tmp/features
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.features import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Features configuration (config.py or config.py:tiny)."
)
_WORKDIR = _common.define_workdir("Directory for features.md/.csv, results.json and curves.png.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    experiment.validate_config(config)
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    if result.skipped:
        print(f"skipped: {result.skipped}")
        return
    for model, row in result.best.items():
        print(
            f"{model}: lr={row['learning_rate']:g} l2={row['l2']:g} val_accuracy={row['val_accuracy']:.4f} "
            f"test_accuracy={row['test_accuracy']:.4f}"
        )
    print(f"num_features={result.num_features} seconds={result.seconds:.1f} workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
