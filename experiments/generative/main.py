"""Generative models on digits: baseline, autoencoder, VAE, GAN, PixelCNN, PixelRNN; see config.py."""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.generative import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for the tables, image grids and report.md.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    models = experiment.validate_config(config)
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir, models=models)
    for row in result.rows:
        print(" ".join(f"{k}={v}" for k, v in row.items()))
    print(f"seconds={result.seconds:.1f} workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
