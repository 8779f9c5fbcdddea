"""Coarse-to-fine random hyperparameter search that aborts exploding trials; see config.py."""

from __future__ import annotations

import pathlib

from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import _common
from experiments.hparam_search import experiment
from experiments.hparam_search import search

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).with_name("config.py")), "Search configuration.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for trials.md/.csv, trials.png and results.json.")


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    config = _CONFIG.value
    experiment.validate_config(config)
    workdir = _common.check_workdir(_WORKDIR.value)
    trials = experiment.run(config, workdir)
    best = search.rank(trials)[0]
    shown = " ".join(f"{k}={v:.3g}" for k, v in best.hparams.items())
    diverged = sum(t.result["status"] == "diverged" for t in trials)
    print(f"best: {shown} val_accuracy={best.result['val_accuracy']:.4f} "
          f"({len(trials)} trials, {diverged} diverged) workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
