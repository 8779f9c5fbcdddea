"""kNN on CIFAR-10 (or MNIST-1D, digits): cross-validated k, L1 vs L2; see config.py."""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.knn import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"), help_string="kNN configuration.")
_WORKDIR = _common.define_workdir("Directory for the plot, CSV, results.json and report.md.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    experiment.validate_config(config)  # a one-line UsageError naming the field
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(
        f"best metric={result.best_metric} k={result.best_k} cv_accuracy={result.best_cv_accuracy:.4f} "
        f"test_accuracy={result.test_accuracy:.4f} seconds={result.seconds:.1f} workdir={workdir}"
    )


if __name__ == "__main__":
    _common.run(main)
